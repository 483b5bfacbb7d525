package groupcommit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/groupcommit"
)

var errClosed = errors.New("closed")

// recorder is a flush function that records the groups it gets and can be held.
type recorder struct {
	mu     sync.Mutex
	groups [][]int
	hold   chan struct{} // while open, flush blocks
	taken  chan struct{} // receives once per flush, before holding
}

func newRecorder() *recorder {
	return &recorder{hold: make(chan struct{}), taken: make(chan struct{}, 100)}
}

func (r *recorder) flush(calls []*groupcommit.Call[int]) {
	r.taken <- struct{}{}
	<-r.hold
	var g []int
	for _, c := range calls {
		g = append(g, c.Work)
		c.First = uint64(c.Work) * 10
		if c.Work < 0 {
			c.Err = errors.New("refused")
		}
	}
	r.mu.Lock()
	r.groups = append(r.groups, g)
	r.mu.Unlock()
}

func size(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// waitFor polls until cond holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroups checks batching with MaxBatch, MaxCallers and carry-over: while a first call is
// being flushed, the calls that queue behind it are taken in groups that never exceed the
// limits (a call that does not fit starts the next group, and one call larger than MaxBatch
// goes alone), each call is flushed once, and every caller gets its own answer. (How many
// queued calls share a group depends on timing; the stores' tests measure the sharing.)
func TestGroups(t *testing.T) {
	tests := []struct {
		name      string
		opts      groupcommit.Options
		queued    []int // sizes queued while the first call (size 1) is flushed
		minGroups int   // the first call is flushed alone; the limits force the rest
	}{
		{"all fit", groupcommit.Options{MaxBatch: 100}, []int{2, 3, 4}, 2},
		{"batch limit carries over", groupcommit.Options{MaxBatch: 5}, []int{2, 3, 4}, 3},
		{"caller limit", groupcommit.Options{MaxBatch: 100, MaxCallers: 2}, []int{2, 3, 4}, 3},
		{"oversized call alone", groupcommit.Options{MaxBatch: 3}, []int{7}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			tt.opts.Closed = errClosed
			q := groupcommit.New(tt.opts, size, rec.flush)
			var wg sync.WaitGroup
			answers := make(map[int]uint64)
			var mu sync.Mutex
			submit := func(n int) {
				wg.Go(func() {
					first, err := q.Submit(context.Background(), n)
					if err != nil {
						t.Errorf("Submit(%d): %v", n, err)
					}
					mu.Lock()
					answers[n] = first
					mu.Unlock()
				})
			}
			submit(1)
			<-rec.taken // the first call is being flushed: the others queue
			for _, n := range tt.queued {
				submit(n)
			}
			close(rec.hold)
			wg.Wait()
			q.Close()
			if len(rec.groups) < tt.minGroups {
				t.Errorf("groups %v, want at least %d groups", rec.groups, tt.minGroups)
			}
			var all []int
			for _, g := range rec.groups {
				sum := 0
				for _, n := range g {
					sum += size(n)
				}
				if len(g) > 1 && sum > tt.opts.MaxBatch || tt.opts.MaxCallers > 0 && len(g) > tt.opts.MaxCallers {
					t.Errorf("group %v exceeds the limits", g)
				}
				all = append(all, g...)
			}
			slices.Sort(all)
			want := append([]int{1}, tt.queued...)
			slices.Sort(want)
			if !slices.Equal(all, want) {
				t.Errorf("flushed %v, want each of %v once", all, want)
			}
			for n, first := range answers {
				if first != uint64(n)*10 {
					t.Errorf("call %d answered %d, want its own result %d", n, first, n*10)
				}
			}
		})
	}
}

// TestCancelledBeforeTaken checks that a call whose context is done before a writer takes it
// gets the context's error and never reaches the flush function, and that an error the flush
// function sets reaches its caller alone.
func TestCancelledBeforeTaken(t *testing.T) {
	rec := newRecorder()
	q := groupcommit.New(groupcommit.Options{MaxBatch: 100, Closed: errClosed}, size, rec.flush)
	done := make(chan error, 1)
	go func() { _, err := q.Submit(context.Background(), 1); done <- err }()
	<-rec.taken
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() { _, err := q.Submit(ctx, 2); cancelled <- err }()
	refused := make(chan error, 1)
	go func() { _, err := q.Submit(context.Background(), -3); refused <- err }()
	cancel() // whether it is waiting to be taken or not yet submitted, it is not written
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v, want context.Canceled", err)
	}
	close(rec.hold)
	if err := <-done; err != nil {
		t.Errorf("first call: %v", err)
	}
	if err := <-refused; err == nil || err.Error() != "refused" {
		t.Errorf("refused call: %v, want its own error", err)
	}
	q.Close()
	for _, g := range rec.groups {
		if slices.Contains(g, 2) {
			t.Errorf("the cancelled call reached flush: %v", rec.groups)
		}
	}
	if _, err := q.Submit(context.Background(), 4); !errors.Is(err, errClosed) {
		t.Errorf("after Close: %v, want the Closed error", err)
	}
	if !q.Closed() {
		t.Error("Closed() = false after Close")
	}
}

// TestCloseWaits checks that Close waits for a group being flushed and that its callers are
// answered.
func TestCloseWaits(t *testing.T) {
	rec := newRecorder()
	q := groupcommit.New(groupcommit.Options{MaxBatch: 100, Writers: 2, Closed: errClosed}, size, rec.flush)
	done := make(chan error, 1)
	go func() { _, err := q.Submit(context.Background(), 1); done <- err }()
	<-rec.taken
	closed := make(chan struct{})
	go func() { q.Close(); close(closed) }()
	waitFor(t, "Closed", q.Closed)
	select {
	case <-closed:
		t.Fatal("Close returned while a group was being flushed")
	default:
	}
	close(rec.hold)
	<-closed
	if err := <-done; err != nil {
		t.Errorf("call taken before Close: %v", err)
	}
}
