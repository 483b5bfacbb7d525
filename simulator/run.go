package simulator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// rateWindow is the span over which Stats.Rate is measured.
const rateWindow = 5 * time.Second

// statusEvery is how often Run reports Stats.
const statusEvery = time.Second

// Stats is a snapshot of a simulation run.
type Stats struct {
	Accepted  uint64 // observations the server stored
	Rejected  uint64 // observations refused with a 4xx
	Throttled uint64 // observations refused with 429 (or 503 and Retry-After), or held back
	Failed    uint64 // observations lost to network errors, cancellation, 5xx
	// Devices is the number of devices enrolled so far.
	Devices int
	// Elapsed is the time since Run started.
	Elapsed time.Duration
	// Rate is the number of accepted observations per second over the last few seconds.
	Rate float64
	// LastError describes the latest failure or rejection, or is empty.
	LastError string
}

// String returns a one-line status, for example
// "devices 3 | accepted 1234 | rejected 0 | throttled 0 | failed 0 | 3.0 obs/s".
func (s Stats) String() string {
	line := fmt.Sprintf("devices %d | accepted %d | rejected %d | throttled %d | failed %d | %.1f obs/s",
		s.Devices, s.Accepted, s.Rejected, s.Throttled, s.Failed, s.Rate)
	if s.LastError != "" {
		line += " | last error: " + s.LastError
	}
	return line
}

// runner holds the shared counters of one Run.
type runner struct {
	s     *settings
	start time.Time

	accepted, rejected, throttled, failed atomic.Uint64
	devices                               atomic.Int64
	lastErr                               atomic.Pointer[string]
}

func (r *runner) setLastError(msg string) { r.lastErr.Store(&msg) }

// count converts a Result count, which Send never makes negative, for the counters.
func count(n int) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}

func (r *runner) record(d *Device, res Result, err error) {
	r.accepted.Add(count(res.Accepted))
	r.rejected.Add(count(res.Rejected))
	r.throttled.Add(count(res.Throttled))
	r.failed.Add(count(res.Failed))
	switch {
	case err != nil:
		r.setLastError(err.Error())
	case res.Rejected > 0:
		r.setLastError(fmt.Sprintf("device %s: rejected: %s", d.ID(), res.Diagnostics))
	}
}

// snapshot returns the counters, without Rate.
func (r *runner) snapshot(now time.Time) Stats {
	st := Stats{
		Accepted:  r.accepted.Load(),
		Rejected:  r.rejected.Load(),
		Throttled: r.throttled.Load(),
		Failed:    r.failed.Load(),
		Devices:   int(r.devices.Load()),
		Elapsed:   now.Sub(r.start),
	}
	if p := r.lastErr.Load(); p != nil {
		st.LastError = *p
	}
	return st
}

// report calls status about once a second until stop is closed, then once more.
func (r *runner) report(status func(Stats), stop <-chan struct{}) {
	type sample struct {
		t        time.Time
		accepted uint64
	}
	samples := []sample{{r.start, 0}}
	emit := func() {
		now := time.Now()
		st := r.snapshot(now)
		samples = append(samples, sample{now, st.Accepted})
		for len(samples) > 2 && now.Sub(samples[1].t) >= rateWindow {
			samples = samples[1:]
		}
		if first := samples[0]; now.Sub(first.t) > 0 {
			st.Rate = float64(st.Accepted-first.accepted) / now.Sub(first.t).Seconds()
		}
		if status != nil {
			status(st)
		}
	}
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			emit()
			return
		case <-tick.C:
			emit()
		}
	}
}

// Run simulates cfg.Devices against cfg.ServerURL: it enrolls every device over EST (in
// parallel, at most EnrollConcurrency at a time), then has each device send a round of
// observations every Interval until ctx is done. status, if not nil, receives Stats about once
// a second and once more when Run returns; it is never called concurrently.
//
// When ctx is done, no new round starts; requests in flight may finish within ShutdownGrace,
// after which they are cancelled and count as failed. Run returns nil once streaming stopped
// because ctx is done, or an error if the configuration is invalid or a device could not
// enroll (in which case nothing is streamed).
func Run(ctx context.Context, cfg Config, status func(Stats)) error {
	s, err := cfg.resolve()
	if err != nil {
		return err
	}
	if len(s.Devices) == 0 {
		return errors.New("simulator: no devices to simulate")
	}
	devices := make([]*Device, len(s.Devices))
	for i, dc := range s.Devices {
		if devices[i], err = newDevice(s, dc); err != nil {
			return err
		}
	}
	defer func() {
		for _, d := range devices {
			d.Close()
		}
	}()

	r := &runner{s: s, start: time.Now()}
	stopReport := make(chan struct{})
	reportDone := make(chan struct{})
	go func() {
		defer close(reportDone)
		r.report(status, stopReport)
	}()
	defer func() {
		close(stopReport)
		<-reportDone
	}()

	if err := r.enrollAll(ctx, devices); err != nil {
		return err
	}

	// Requests in flight outlive ctx by at most ShutdownGrace.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	streamDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-time.After(s.ShutdownGrace):
				cancelSend()
			case <-streamDone:
			}
		case <-streamDone:
		}
	}()

	var wg sync.WaitGroup
	for i, d := range devices {
		// Spread the devices evenly over one interval rather than firing them all at once.
		offset := s.Interval * time.Duration(i) / time.Duration(len(devices))
		wg.Go(func() { r.stream(ctx, sendCtx, d, offset) })
	}
	wg.Wait()
	close(streamDone)
	return nil
}

// enrollAll enrolls every device, at most EnrollConcurrency at a time.
func (r *runner) enrollAll(ctx context.Context, devices []*Device) error {
	sem := make(chan struct{}, r.s.EnrollConcurrency)
	errs := make([]error, len(devices))
	var wg sync.WaitGroup
	for i, d := range devices {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = fmt.Errorf("simulator: device %s: enroll: %w", d.ID(), ctx.Err())
				return
			}
			defer func() { <-sem }()
			if err := d.Enroll(ctx); err != nil {
				errs[i] = err
				r.setLastError(err.Error())
				return
			}
			r.devices.Add(1)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stream sends a round every Interval, starting after offset, until ctx is done. A device
// told to slow down waits at least the Retry-After it was given. It re-enrolls when its
// certificate nears expiry.
func (r *runner) stream(ctx, sendCtx context.Context, d *Device, offset time.Duration) {
	timer := time.NewTimer(offset)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if ctx.Err() != nil {
			return
		}
		start := time.Now()
		if d.RenewalDue() {
			if err := d.Reenroll(sendCtx); err != nil {
				r.setLastError(err.Error())
			}
		}
		res, err := d.Send(sendCtx)
		r.record(d, res, err)
		wait := r.s.Interval - time.Since(start)
		if res.Throttled > 0 {
			wait = max(wait, res.RetryAfter)
		}
		timer.Reset(max(wait, 0))
	}
}
