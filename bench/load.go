package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Call is one unit of work of a load run, made by worker (0 <= worker < workers). It returns
// how many units (observations, entries, messages) the call carried, or an error. The call
// must honour ctx.
type Call func(ctx context.Context, worker int) (units int, err error)

// Progress is what a load run reports while it runs (about once a second).
type Progress struct {
	Phase   string        // "warm-up" or "measure"
	Elapsed time.Duration // time spent in the phase
	Total   time.Duration // length of the phase
	Calls   int64         // successful calls in the phase so far
	Units   int64         // their units
	Errors  int64         // failed calls in the phase so far
}

// LoadOptions configures [Load].
type LoadOptions struct {
	Workers  int           // concurrent callers (closed loop: each waits for its answer)
	Duration time.Duration // measured time
	Warmup   time.Duration // time run first and not measured (connections, caches)
	// Progress, if set, is called about once a second from a separate goroutine.
	Progress func(Progress)
	// AtMeasure and AtEnd, if set, are called when the measured window starts and when it
	// ends, while the workers keep calling (to count rows in the store over the window).
	AtMeasure, AtEnd func()
}

// Load runs call from opt.Workers goroutines in a closed loop: every worker calls again as
// soon as its previous call returns. It runs a warm-up first, then measures for
// opt.Duration, recording the latency of every successful call that started in the
// measured window. It returns early, with what it measured, when ctx is done.
func Load(ctx context.Context, opt LoadOptions, call Call) Summary {
	workers := max(opt.Workers, 1)
	var (
		measuring  atomic.Bool
		calls      atomic.Int64
		units      atomic.Int64
		errs       atomic.Int64
		allUnits   atomic.Int64
		firstErr   atomic.Pointer[string]
		perWorker  = make([][]time.Duration, workers)
		phaseStart atomic.Pointer[time.Time]
		phase      atomic.Pointer[string]
	)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	setPhase := func(name string) {
		now := time.Now()
		phase.Store(&name)
		phaseStart.Store(&now)
	}
	setPhase("warm-up")
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1024)
			for runCtx.Err() == nil {
				counted := measuring.Load()
				start := time.Now()
				n, err := call(runCtx, w)
				d := time.Since(start)
				if err == nil {
					allUnits.Add(int64(n))
				}
				if runCtx.Err() != nil {
					break // a call cut short by the end of the run is not a result
				}
				if !counted || !measuring.Load() {
					continue
				}
				if err != nil {
					errs.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				lat = append(lat, d)
				calls.Add(1)
				units.Add(int64(n))
			}
			perWorker[w] = lat
		}()
	}
	stopProgress := make(chan struct{})
	var pwg sync.WaitGroup
	if opt.Progress != nil {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					p := Progress{Phase: *phase.Load(), Elapsed: time.Since(*phaseStart.Load()),
						Calls: calls.Load(), Units: units.Load(), Errors: errs.Load(), Total: opt.Warmup}
					if p.Phase == "measure" {
						p.Total = opt.Duration
					}
					opt.Progress(p)
				}
			}
		}()
	}
	sleep(runCtx, opt.Warmup)
	setPhase("measure")
	start := time.Now()
	measuring.Store(true)
	if opt.AtMeasure != nil {
		opt.AtMeasure()
	}
	sleep(runCtx, opt.Duration-time.Since(start))
	measuring.Store(false)
	elapsed := time.Since(start)
	if opt.AtEnd != nil {
		opt.AtEnd()
	}
	cancel()
	wg.Wait()
	close(stopProgress)
	pwg.Wait()
	var all []time.Duration
	for _, l := range perWorker {
		all = append(all, l...)
	}
	s := Summarize(all, units.Load(), errs.Load(), elapsed)
	s.AllUnits = allUnits.Load()
	if p := firstErr.Load(); p != nil {
		s.FirstErr = *p
	}
	return s
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
