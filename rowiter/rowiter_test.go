package rowiter_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/vitalgate/vitalgate/rowiter"
)

// fakeRows yields vals one by one; scanErrAt (1-based, 0 for none) fails that row's Scan,
// and err ends the iteration with an error.
type fakeRows struct {
	vals      []int
	i         int
	scanErrAt int
	err       error
}

var errScan = errors.New("scan failed")

func (r *fakeRows) Next() bool {
	if r.i >= len(r.vals) {
		return false
	}
	r.i++
	return true
}

func (r *fakeRows) Scan(dest ...any) error {
	if r.i == r.scanErrAt {
		return errScan
	}
	*dest[0].(*int) = r.vals[r.i-1]
	return nil
}

func (r *fakeRows) Err() error { return r.err }

func scanInt(s rowiter.Scanner) (int, error) {
	var v int
	err := s.Scan(&v)
	return v, err
}

type mapped struct{ err error }

func (m mapped) Error() string { return "mapped: " + m.err.Error() }
func (m mapped) Unwrap() error { return m.err }

func mapErr(err error) error { return mapped{err} }

func TestEach(t *testing.T) {
	var got []int
	collect := func(v int) error { got = append(got, v); return nil }
	if err := rowiter.Each(&fakeRows{vals: []int{1, 2, 3}}, scanInt, mapErr, collect); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("got %v", got)
	}

	stop := errors.New("stop")
	calls := 0
	err := rowiter.Each(&fakeRows{vals: []int{1, 2, 3}}, scanInt, mapErr, func(int) error { calls++; return stop })
	if err != stop || calls != 1 { // fn's error is returned unchanged, not mapped
		t.Fatalf("err = %v after %d calls, want stop after 1", err, calls)
	}

	got = nil
	err = rowiter.Each(&fakeRows{vals: []int{1, 2, 3}, scanErrAt: 2}, scanInt, mapErr, collect)
	var m mapped
	if !errors.As(err, &m) || !errors.Is(err, errScan) || !slices.Equal(got, []int{1}) {
		t.Fatalf("scan error: err = %v, got %v", err, got)
	}

	errRows := errors.New("connection lost")
	err = rowiter.Each(&fakeRows{vals: []int{1}, err: errRows}, scanInt, mapErr, func(int) error { return nil })
	if !errors.As(err, &m) || !errors.Is(err, errRows) {
		t.Fatalf("rows error: err = %v", err)
	}
}

func TestCollect(t *testing.T) {
	got, err := rowiter.Collect(&fakeRows{vals: []int{4, 5}}, scanInt)
	if err != nil || !slices.Equal(got, []int{4, 5}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if got, err := rowiter.Collect(&fakeRows{}, scanInt); err != nil || got != nil {
		t.Fatalf("no rows: got %#v, %v", got, err)
	}
	if got, err := rowiter.Collect(&fakeRows{vals: []int{4, 5}, scanErrAt: 2}, scanInt); err != errScan || got != nil {
		t.Fatalf("scan error: got %v, %v", got, err)
	}
	errRows := errors.New("connection lost")
	if got, err := rowiter.Collect(&fakeRows{vals: []int{4}, err: errRows}, scanInt); err != errRows || got != nil {
		t.Fatalf("rows error: got %v, %v", got, err)
	}
}
