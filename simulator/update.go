package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate/updateclient"
)

// Failure modes of a simulated update ([UpdateConfig.Fail]), so that a test can make a
// rollout group fail.
const (
	// FailNone installs every verified release and reports it healthy.
	FailNone = ""
	// FailInstall reports failed after the download verified, without installing.
	FailInstall = "install"
	// FailHealth installs, reports installed, then reports failed (the health check).
	FailHealth = "health"
	// FailRollback installs, reports installed, fails its health check, restores the
	// previous version and reports rolled-back (A/B rollback).
	FailRollback = "rollback"
)

// DefaultPollInterval is how often a device asks for an offer by default.
const DefaultPollInterval = 30 * time.Second

// UpdateConfig turns on the update side of the simulated devices ([RunWithUpdates],
// [Device.NewUpdater]): each polls GET /updates/offer, verifies and downloads the offered
// release through TUF ([updateclient]), "installs" it (records the version in its state
// directory) and reports downloading, installed and healthy (or failed, with the reason)
// with POST /updates/report, while it keeps sending vitals.
type UpdateConfig struct {
	// Model is the device model id of the simulated devices (their TUF delegated role).
	Model string
	// ServerURL is where the update endpoints are (default: Config.ServerURL).
	ServerURL string
	// TrustedRoot is the root.json the devices are provisioned with, obtained out of band;
	// if empty, TrustedRootFile is read.
	TrustedRoot []byte
	// TrustedRootFile is a file holding that root.json.
	TrustedRootFile string
	// Dir holds each device's update state in Dir/DEVICE-ID/: metadata/, targets/ and
	// installed.json (the installed version). Keep it across runs: it is what lets a
	// device detect rolled-back metadata.
	Dir string
	// PollInterval is how often each device asks for an offer (default 30 s).
	PollInterval time.Duration
	// Fail is the failure mode: FailNone, FailInstall, FailHealth or FailRollback.
	Fail string
	// ClockSkew is how far a device clock may run ahead of the repository's.
	ClockSkew time.Duration
	// Retry is the backoff for transient failures (updateclient's defaults when zero).
	Retry updateclient.Retry
}

// Validate reports whether u has a model, a trusted root, a state directory, a known
// failure mode and no negative duration.
func (u UpdateConfig) Validate() error {
	var errs []error
	if u.Model == "" {
		errs = append(errs, errors.New("simulator: updates: the device model is required (simulate --model)"))
	}
	if len(u.TrustedRoot) == 0 && u.TrustedRootFile == "" {
		errs = append(errs, errors.New("simulator: updates: the trusted root.json the devices are provisioned with is required (simulate --tuf-root FILE)"))
	}
	if u.Dir == "" {
		errs = append(errs, errors.New("simulator: updates: a state directory is required (simulate --update-dir DIR)"))
	}
	switch u.Fail {
	case FailNone, FailInstall, FailHealth, FailRollback:
	default:
		errs = append(errs, fmt.Errorf("simulator: updates: failure mode %q is not one of %q, %q, %q (simulate --update-fail)", u.Fail, FailInstall, FailHealth, FailRollback))
	}
	if u.PollInterval < 0 || u.ClockSkew < 0 {
		errs = append(errs, errors.New("simulator: updates: durations must not be negative"))
	}
	return errors.Join(errs...)
}

// UpdateEvent is something a simulated device did about an update: a report it sent (State
// set) or a notice (State empty).
type UpdateEvent struct {
	Device  string
	Version string
	State   updateclient.State
	// Message is the report's reason, or the notice.
	Message string
	// Err is set when the report could not be sent.
	Err error
}

// String returns a one-line description, for example
// "device pump-1 1.2.0 healthy" or "device pump-1 1.2.0 failed: simulated installation failure".
func (e UpdateEvent) String() string {
	line := "device " + e.Device
	if e.Version != "" {
		line += " " + e.Version
	}
	if e.State != "" {
		line += " " + string(e.State)
	}
	if e.Message != "" {
		line += ": " + e.Message
	}
	if e.Err != nil {
		line += " (report not delivered: " + e.Err.Error() + ")"
	}
	return line
}

// ErrNoUpdates is returned (wrapped) by [Updater.Poll] when the server answers 404 for
// /updates/offer: it serves no updates.
var ErrNoUpdates = errors.New("simulator: the server has no updates: GET /updates/offer answered 404 (a server without signed updates, or an older version); run without --update")

// Updater is the update agent of one simulated device.
type Updater struct {
	d    *Device
	c    *updateclient.Client
	conf UpdateConfig
	dir  string

	mu        sync.Mutex
	installed string          // installed version
	refused   map[string]bool // offers that failed here: not tried again
}

// installedRecord is the content of installed.json.
type installedRecord struct {
	Version string    `json:"version"`
	Target  string    `json:"target"`
	SHA256  string    `json:"sha256"`
	At      time.Time `json:"installed_at"`
}

// NewUpdater returns the update agent of d, configured by u. The device must be enrolled
// before the agent's first Poll (it uses the device certificate).
func (d *Device) NewUpdater(u UpdateConfig) (*Updater, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	if len(u.TrustedRoot) == 0 {
		b, err := os.ReadFile(u.TrustedRootFile) // #nosec G304 -- the root file the operator names (--tuf-root)
		if err != nil {
			return nil, fmt.Errorf("simulator: updates: reading the trusted root: %w", err)
		}
		u.TrustedRoot = b
	}
	if u.PollInterval == 0 {
		u.PollInterval = DefaultPollInterval
	}
	if u.ServerURL == "" {
		u.ServerURL = d.s.ServerURL
	}
	dir := filepath.Join(u.Dir, url.PathEscape(d.conf.ID))
	c, err := updateclient.New(updateclient.Config{
		ServerURL: u.ServerURL,
		// The device's own transport (its certificate, the server's CA only), without the
		// overall timeout of its FHIR client, which would cut large downloads short.
		HTTPClient: &http.Client{
			Transport:     d.transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		TrustedRoot:    u.TrustedRoot,
		MetadataDir:    filepath.Join(dir, "metadata"),
		TargetsDir:     filepath.Join(dir, "targets"),
		Model:          u.Model,
		ClockSkew:      u.ClockSkew,
		RequestTimeout: d.s.HTTPClientTimeout,
		Retry:          u.Retry,
		UserAgent:      "vitalgate-simulator/1 (" + d.conf.Kind + ")",
		Now:            d.s.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("simulator: device %s: %w", d.conf.ID, err)
	}
	up := &Updater{d: d, c: c, conf: u, dir: dir, refused: map[string]bool{}}
	if b, err := os.ReadFile(filepath.Join(dir, "installed.json")); err == nil { // #nosec G304 -- the state directory the operator configured, joined with the escaped device id
		var rec installedRecord
		if json.Unmarshal(b, &rec) == nil {
			up.installed = rec.Version
		}
	}
	return up, nil
}

// Installed returns the version the device has installed, or "".
func (u *Updater) Installed() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.installed
}

// Poll asks the server for an offer once and acts on it: nothing when nothing new is
// offered (or the offer already failed on this device); otherwise it reports downloading,
// verifies the offer's target through TUF and downloads it, installs it and reports
// installed and healthy, or reports failed with the reason at the first step that fails
// (or that the failure mode makes fail). It returns the events, and an error only when it
// could not ask: ErrNoUpdates for a server that answers 404, or the offer request's error.
func (u *Updater) Poll(ctx context.Context) ([]UpdateEvent, error) {
	if u.d.cert.Load() == nil {
		return nil, ErrNotEnrolled
	}
	o, ok, err := u.c.Offer(ctx)
	switch {
	case errors.Is(err, updateclient.ErrNoUpdateService):
		return nil, fmt.Errorf("device %s: %w", u.d.conf.ID, ErrNoUpdates)
	case err != nil:
		return nil, fmt.Errorf("simulator: device %s: %w", u.d.conf.ID, err)
	case !ok:
		return nil, nil
	}
	u.mu.Lock()
	skip := o.Version == u.installed || u.refused[o.Target]
	u.mu.Unlock()
	if skip {
		return nil, nil
	}
	var events []UpdateEvent
	report := func(s updateclient.State, reason string) {
		if len(reason) > 1000 {
			reason = reason[:1000]
		}
		err := u.c.Report(ctx, updateclient.Report{Version: o.Version, State: s, Reason: reason})
		events = append(events, UpdateEvent{Device: u.d.conf.ID, Version: o.Version, State: s, Message: reason, Err: err})
	}
	fail := func(reason string) ([]UpdateEvent, error) {
		u.mu.Lock()
		u.refused[o.Target] = true
		u.mu.Unlock()
		report(updateclient.StateFailed, reason)
		return events, nil
	}
	report(updateclient.StateDownloading, "")
	t, err := u.c.Verify(ctx, o)
	if err != nil {
		return fail("verification failed: " + err.Error())
	}
	if _, err := u.c.Download(ctx, t); err != nil {
		return fail("download failed: " + err.Error())
	}
	if u.conf.Fail == FailInstall {
		return fail("simulated installation failure")
	}
	previous := u.Installed()
	rec := installedRecord{Version: t.Version, Target: t.Path, SHA256: t.Hashes["sha256"], At: u.d.s.Now().UTC()}
	prevRec, _ := os.ReadFile(filepath.Join(u.dir, "installed.json")) // #nosec G304 -- see NewUpdater
	if err := u.record(rec.Version, rec); err != nil {
		return fail("installation failed: " + err.Error())
	}
	report(updateclient.StateInstalled, "")
	switch u.conf.Fail {
	case FailHealth:
		return fail("simulated health check failure after installing")
	case FailRollback:
		u.mu.Lock()
		u.refused[o.Target] = true
		u.mu.Unlock()
		if err := u.record(previous, json.RawMessage(prevRec)); err != nil {
			return fail("simulated health check failure; restoring the previous version failed: " + err.Error())
		}
		was := previous
		if was == "" {
			was = "none"
		}
		report(updateclient.StateRolledBack, "simulated health check failure after installing; previous version ("+was+") restored")
		return events, nil
	}
	report(updateclient.StateHealthy, "")
	return events, nil
}

// record makes version the installed one: installed.json holds rec (written atomically),
// or is removed when version is "" (nothing installed).
func (u *Updater) record(version string, rec any) error {
	final := filepath.Join(u.dir, "installed.json")
	if version == "" {
		if err := os.Remove(final); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	} else {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		tmp := final + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil { // #nosec G703 -- the configured state directory joined with the escaped device id
			return err
		}
		if err := os.Rename(tmp, final); err != nil {
			return err
		}
	}
	u.mu.Lock()
	u.installed = version
	u.mu.Unlock()
	return nil
}

// RunWithUpdates is [Run] with updates: every device also polls for an offer every
// up.PollInterval (spread over the interval) and acts on it as [Updater.Poll] says, while it
// keeps sending vitals. events, if not nil, receives every [UpdateEvent], never
// concurrently. A device whose server answers 404 for /updates/offer is told once
// (an event with ErrNoUpdates's message) and stops polling; its vitals go on.
func RunWithUpdates(ctx context.Context, cfg Config, up UpdateConfig, status func(Stats), events func(UpdateEvent)) error {
	if err := up.Validate(); err != nil {
		return err
	}
	s, err := cfg.resolve()
	if err != nil {
		return err
	}
	if len(s.Devices) == 0 {
		return errors.New("simulator: no devices to simulate")
	}
	devices := make([]*Device, len(s.Devices))
	updaters := make([]*Updater, len(s.Devices))
	for i, dc := range s.Devices {
		if devices[i], err = newDevice(s, dc); err != nil {
			return err
		}
		if updaters[i], err = devices[i].NewUpdater(up); err != nil {
			return err
		}
	}
	defer func() {
		for _, d := range devices {
			d.Close()
		}
	}()
	var emitMu sync.Mutex
	emit := func(e UpdateEvent) {
		if events == nil {
			return
		}
		emitMu.Lock()
		defer emitMu.Unlock()
		events(e)
	}

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
	// Vitals in flight outlive ctx by at most ShutdownGrace, as in Run.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(s.ShutdownGrace, cancelSend)
	})
	defer stop()

	var wg sync.WaitGroup
	for i, d := range devices {
		offset := s.Interval * time.Duration(i) / time.Duration(len(devices))
		wg.Go(func() { r.stream(ctx, sendCtx, d, offset) })
		pollOffset := updaters[i].conf.PollInterval * time.Duration(i) / time.Duration(len(devices))
		wg.Go(func() { pollUpdates(ctx, updaters[i], pollOffset, emit) })
	}
	wg.Wait()
	return nil
}

// pollUpdates polls every PollInterval, starting after offset, until ctx is done or the
// server turns out to have no updates.
func pollUpdates(ctx context.Context, u *Updater, offset time.Duration, emit func(UpdateEvent)) {
	timer := time.NewTimer(offset)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		evs, err := u.Poll(ctx)
		for _, e := range evs {
			emit(e)
		}
		switch {
		case errors.Is(err, ErrNoUpdates):
			emit(UpdateEvent{Device: u.d.conf.ID, Message: ErrNoUpdates.Error()})
			return
		case err != nil && ctx.Err() == nil:
			emit(UpdateEvent{Device: u.d.conf.ID, Message: err.Error()})
		}
		timer.Reset(u.conf.PollInterval)
	}
}
