package bench_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/bench"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", ms(7), 99.9, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median of even is the lower (nearest rank)", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p99.9 of 1..100 is the max", ms(hundred...), 99.9, 100 * time.Millisecond},
		{"p100", ms(hundred...), 100, 100 * time.Millisecond},
		{"p0 is the min", ms(hundred...), 0, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bench.Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	lat := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}
	s := bench.Summarize(lat, 300, 1, 2*time.Second)
	if s.Calls != 3 || s.Units != 300 || s.Errors != 1 {
		t.Errorf("counts = %d calls, %d units, %d errors", s.Calls, s.Units, s.Errors)
	}
	if s.P50 != 2*time.Millisecond || s.Max != 3*time.Millisecond {
		t.Errorf("p50 %v max %v, want 2ms 3ms", s.P50, s.Max)
	}
	if s.CallRate() != 1.5 || s.UnitRate() != 150 {
		t.Errorf("rates %v calls/s %v units/s, want 1.5 and 150", s.CallRate(), s.UnitRate())
	}
	if (bench.Summary{Calls: 5}).CallRate() != 0 {
		t.Error("a zero elapsed time must give a zero rate")
	}
}

// TestLoad checks the driver's bookkeeping (not its timing): every worker calls, units and
// failures are counted, the first failure is kept.
func TestLoad(t *testing.T) {
	var seen [4]atomic.Int64
	var n atomic.Int64
	s := bench.Load(context.Background(), bench.LoadOptions{Workers: 4, Duration: 100 * time.Millisecond, Warmup: 10 * time.Millisecond},
		func(ctx context.Context, w int) (int, error) {
			seen[w].Add(1)
			time.Sleep(time.Millisecond)
			if n.Add(1)%10 == 0 {
				return 0, errors.New("every tenth call fails")
			}
			return 2, nil
		})
	for w := range seen {
		if seen[w].Load() == 0 {
			t.Errorf("worker %d never called", w)
		}
	}
	if s.Calls == 0 || s.Units != 2*s.Calls {
		t.Errorf("calls %d units %d, want units = 2 × calls > 0", s.Calls, s.Units)
	}
	if s.Errors == 0 || s.FirstErr != "every tenth call fails" {
		t.Errorf("errors %d first %q", s.Errors, s.FirstErr)
	}
	if s.P50 <= 0 || s.P99 < s.P50 || s.P999 < s.P99 || s.Max < s.P999 {
		t.Errorf("percentiles out of order: %v %v %v %v", s.P50, s.P99, s.P999, s.Max)
	}
}

func TestLoadStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := bench.Load(ctx, bench.LoadOptions{Workers: 2, Duration: time.Hour, Warmup: time.Hour},
		func(ctx context.Context, w int) (int, error) { return 1, ctx.Err() })
	if s.Errors != 0 {
		t.Errorf("calls cut short by the end of the run were counted as %d errors", s.Errors)
	}
}

// TestLoadCountsWholeRun checks the hooks at the edges of the measured window (where the
// bench counts rows in the store) and that AllUnits covers the warm-up too.
func TestLoadCountsWholeRun(t *testing.T) {
	var total atomic.Int64
	var atMeasure, atEnd int64
	s := bench.Load(context.Background(), bench.LoadOptions{Workers: 2, Duration: 50 * time.Millisecond, Warmup: 30 * time.Millisecond,
		AtMeasure: func() { atMeasure = total.Load() }, AtEnd: func() { atEnd = total.Load() }},
		func(ctx context.Context, w int) (int, error) {
			time.Sleep(time.Millisecond)
			total.Add(3)
			return 3, nil
		})
	if atMeasure == 0 || atEnd <= atMeasure {
		t.Errorf("hooks saw %d units at the start of the window and %d at its end", atMeasure, atEnd)
	}
	if s.AllUnits <= s.Units || s.AllUnits > total.Load() || s.AllUnits < atEnd {
		t.Errorf("AllUnits %d, measured %d, made %d, %d at the end of the window", s.AllUnits, s.Units, total.Load(), atEnd)
	}
}
