package fresh_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fresh"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// source is a store double: a value per read, counting reads.
type source struct {
	reads int
	value int
	err   error
}

func (s *source) load(context.Context) (int, error) { s.reads++; return s.value, s.err }

func TestCacheBound(t *testing.T) {
	const bound = 2 * time.Second
	tests := []struct {
		name      string
		advance   time.Duration
		err       error
		wantReads int
	}{
		{"within the bound: reused", bound - time.Nanosecond, nil, 1},
		{"at the bound: read again", bound, nil, 2},
		{"clock moved back: read again", -time.Second, nil, 2},
		{"a decision (not found) is reused", time.Second, vitalgate.Errorf(vitalgate.ENOTFOUND, "no"), 1},
		{"a fault is never reused", 0, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "down"), 2},
		{"an internal error is never reused", 0, vitalgate.Errorf(vitalgate.EINTERNAL, "bug"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1000, 0)}
			c := fresh.New[string, int](bound, clk.Now)
			src := &source{value: 1, err: tt.err}
			_, _ = c.Get(t.Context(), "k", src.load)
			src.value = 2
			clk.Advance(tt.advance)
			v, err := c.Get(t.Context(), "k", src.load)
			if src.reads != tt.wantReads {
				t.Errorf("reads = %d, want %d", src.reads, tt.wantReads)
			}
			if tt.err == nil {
				want := 1
				if tt.wantReads == 2 {
					want = 2
				}
				if err != nil || v != want {
					t.Errorf("Get = %d, %v; want %d", v, err, want)
				}
			} else if vitalgate.ErrorCode(err) != vitalgate.ErrorCode(tt.err) {
				t.Errorf("Get error %v, want %v", err, tt.err)
			}
		})
	}
}

func TestCacheForgetAndZeroBound(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	tests := []struct {
		name   string
		bound  time.Duration
		forget bool
	}{
		{"forget reads afresh", time.Minute, true},
		{"zero bound never reuses", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fresh.New[string, int](tt.bound, clk.Now)
			src := &source{value: 1}
			_, _ = c.Get(t.Context(), "k", src.load)
			if tt.forget {
				c.Forget("k")
			}
			if _, _ = c.Get(t.Context(), "k", src.load); src.reads != 2 {
				t.Errorf("reads = %d, want 2", src.reads)
			}
		})
	}
}
