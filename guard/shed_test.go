package guard_test

import (
	"testing"

	"github.com/vitalgate/vitalgate/guard"
)

func TestShedder(t *testing.T) {
	var seen []int64
	s := guard.NewShedder(2, func(n int64) { seen = append(seen, n) })
	steps := []struct {
		name     string
		acquire  bool // else release
		want     bool
		inFlight int64
	}{
		{"first", true, true, 1},
		{"second", true, true, 2},
		{"over the bound", true, false, 2},
		{"release", false, true, 1},
		{"again", true, true, 2},
	}
	for _, st := range steps {
		got := true
		if st.acquire {
			got = s.Acquire()
		} else {
			s.Release()
		}
		if got != st.want || s.InFlight() != st.inFlight {
			t.Fatalf("%s: %v with %d in flight, want %v with %d", st.name, got, s.InFlight(), st.want, st.inFlight)
		}
	}
	if !s.Overloaded() {
		t.Fatal("2 of 2 in flight is not overloaded")
	}
	if len(seen) != 4 || seen[3] != 2 {
		t.Fatalf("gauge saw %v", seen)
	}
	var none *guard.Shedder
	if !none.Acquire() || none.Overloaded() {
		t.Fatal("a nil Shedder sheds")
	}
	none.Release()
}

func TestLimiterAllowN(t *testing.T) {
	l := guard.NewLimiter(0.001, 5, nil)
	for _, st := range []struct {
		n    int
		want bool
	}{{3, true}, {3, false}, {2, true}, {1, false}} {
		if ok, _ := l.AllowN("k", st.n); ok != st.want {
			t.Fatalf("AllowN(%d) = %v, want %v", st.n, ok, st.want)
		}
	}
	big := guard.NewLimiter(0.001, 5, nil)
	if ok, _ := big.AllowN("k", 50); !ok {
		t.Fatal("a request above the burst is refused for ever")
	}
}
