package guard_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/guard"
)

// fakeClock is a settable clock for the failure limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func failN(f *guard.Failures, principal, source string, n int) {
	for i := 0; i < n; i++ {
		f.Fail(principal, source)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		run       func(f *guard.Failures, clk *fakeClock)
		principal string
		source    string
		allowed   bool
	}{
		{"under the limit", func(f *guard.Failures, _ *fakeClock) { failN(f, "ehr", "10.0.0.1", 2) }, "ehr", "10.0.0.1", true},
		{"at the limit", func(f *guard.Failures, _ *fakeClock) { failN(f, "ehr", "10.0.0.1", 3) }, "ehr", "10.0.0.1", false},
		{"another source is not locked out", func(f *guard.Failures, _ *fakeClock) { failN(f, "ehr", "10.0.0.1", 50) }, "ehr", "10.0.0.2", true},
		{"another principal is not locked out", func(f *guard.Failures, _ *fakeClock) { failN(f, "ehr", "10.0.0.1", 50) }, "lab", "10.0.0.1", true},
		{"the window passes", func(f *guard.Failures, clk *fakeClock) {
			failN(f, "ehr", "10.0.0.1", 3)
			clk.Advance(time.Minute)
		}, "ehr", "10.0.0.1", true},
		{"a success forgets the failures", func(f *guard.Failures, _ *fakeClock) {
			failN(f, "ehr", "10.0.0.1", 2)
			f.Succeed("ehr", "10.0.0.1")
			failN(f, "ehr", "10.0.0.1", 2)
		}, "ehr", "10.0.0.1", true},
		{"a clock going backwards keeps the lockout", func(f *guard.Failures, clk *fakeClock) {
			failN(f, "ehr", "10.0.0.1", 3)
			clk.Advance(-time.Hour)
		}, "ehr", "10.0.0.1", false},
		{"long principals stay distinct from their prefix", func(f *guard.Failures, _ *fakeClock) {
			failN(f, strings.Repeat("a", 300), "10.0.0.1", 3)
		}, strings.Repeat("a", 256), "10.0.0.1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1000, 0)}
			f := guard.NewFailures(3, time.Minute, clk.Now)
			tt.run(f, clk)
			ok, wait := f.Allow(tt.principal, tt.source)
			if ok != tt.allowed {
				t.Fatalf("Allow = %v, want %v", ok, tt.allowed)
			}
			if !ok && (wait <= 0 || wait > time.Minute) {
				t.Fatalf("wait %v, want within the window", wait)
			}
		})
	}
}

// TestFailuresUseTheInjectedClock: the lockout ends when the injected clock says so, not the
// real one.
func TestFailuresUseTheInjectedClock(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	f := guard.NewFailures(1, time.Minute, clk.Now)
	f.Fail("ehr", "10.0.0.1")
	if ok, wait := f.Allow("ehr", "10.0.0.1"); ok || wait != time.Minute {
		t.Fatalf("right after the failure: %v %v, want refused for 1m", ok, wait)
	}
	clk.Advance(59 * time.Second)
	if ok, wait := f.Allow("ehr", "10.0.0.1"); ok || wait != time.Second {
		t.Fatalf("after 59 s: %v %v, want refused for 1s", ok, wait)
	}
	clk.Advance(time.Second)
	if ok, _ := f.Allow("ehr", "10.0.0.1"); !ok {
		t.Fatal("still refused after the window on the injected clock")
	}
}

// TestFailuresMemoryIsBounded: a flood of distinct pairs never grows the limiter beyond its
// bound, and the pairs that failed most recently are the ones kept.
func TestFailuresMemoryIsBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	f := guard.NewFailures(1, time.Minute, clk.Now)
	f.SetMaxTracked(100)
	for i := 0; i < 1000; i++ {
		f.Fail("client-"+strconv.Itoa(i), "10.0.0.1")
	}
	if n := f.Tracked(); n != 100 {
		t.Fatalf("tracked %d pairs, want 100", n)
	}
	if ok, _ := f.Allow("client-999", "10.0.0.1"); ok {
		t.Fatal("the most recent failure was forgotten")
	}
	if ok, _ := f.Allow("client-0", "10.0.0.1"); !ok {
		t.Fatal("the oldest failure was kept beyond the bound")
	}
}

func TestFailuresConcurrent(t *testing.T) {
	f := guard.NewFailures(500, time.Minute, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				f.Fail("ehr", "10.0.0.1")
				f.Allow("ehr", "10.0.0.1")
			}
		}()
	}
	wg.Wait()
	if ok, _ := f.Allow("ehr", "10.0.0.1"); ok {
		t.Fatal("800 concurrent failures did not reach a limit of 500")
	}
}
