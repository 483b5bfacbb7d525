package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rollout"
	"github.com/vitalgate/vitalgate/site"
	"github.com/vitalgate/vitalgate/updateclient"
	"github.com/vitalgate/vitalgate/updates"
)

// The release the update scenario publishes and rolls out.
const (
	updateModel   = "bench-pump"
	updateVersion = "2.0.0"
	updateFile    = "firmware.bin"
)

// updateRun is what one pass of the update scenario (or its baseline) measured: how long
// after the common start each device finished, and the window and bytes of the target
// downloads.
type updateRun struct {
	done     []time.Duration // per device that finished, from the start
	dlStart  time.Time       // the first download's start
	dlEnd    time.Time       // the last download's end
	bytes    int64           // target bytes received in all
	failed   int
	firstErr string
}

// at returns the time until pct % of n devices had finished, or -1 if they did not.
func (u *updateRun) at(pct, n int) time.Duration {
	need := (pct*n + 99) / 100
	if need == 0 || need > len(u.done) {
		return -1
	}
	d := slices.Clone(u.done)
	slices.Sort(d)
	return d[need-1]
}

// rate returns the target bytes per second over the download window.
func (u *updateRun) rate() float64 {
	if w := u.dlEnd.Sub(u.dlStart); w > 0 {
		return float64(u.bytes) / w.Seconds()
	}
	return 0
}

// devResult is what one device measured: when it finished (installed reported, or the
// plain download done) and when its target download began and ended.
type devResult struct {
	finished, dlStart, dlEnd time.Time
	bytes                    int64
}

// record adds one device's outcome.
func (u *updateRun) record(mu *sync.Mutex, start time.Time, res devResult, err error) {
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		u.failed++
		if u.firstErr == "" {
			u.firstErr = err.Error()
		}
		return
	}
	u.done = append(u.done, res.finished.Sub(start))
	u.bytes += res.bytes
	if u.dlStart.IsZero() || res.dlStart.Before(u.dlStart) {
		u.dlStart = res.dlStart
	}
	if res.dlEnd.After(u.dlEnd) {
		u.dlEnd = res.dlEnd
	}
}

// benchUpdate measures a rollout picked up by --devices devices: a release of --update-size
// bytes is published for a registered model (update keys init and update publish, as the
// commands do), a rollout of one group of every device of the model starts, and each
// device, with the real update client (package updateclient) over its mutual TLS client,
// asks for its offer, reports downloading, verifies the release through TUF, streams the
// target to disk checking its length and hash, and reports installed and healthy. Figures:
// the time from the rollout's start until 90 % (and 100 %) of the devices had reported
// installed, and the server's bytes per second of target downloads. Baseline: the same
// devices' clients downloading the same file over the same TLS settings, from the same
// process, served from disk by net/http (http.ServeContent), all starting together. The
// installed devices are counted in the store (the rollout's own figures).
func (b *benchRun) benchUpdate(ctx context.Context) ([]Row, error) {
	srv, err := b.server(ctx)
	if err != nil {
		return nil, err
	}
	n := srv.n
	models, ok := n.Store.(site.Store)
	if !ok {
		return nil, fmt.Errorf("the store (%T) keeps no device models", n.Store)
	}
	rst, ok := n.Store.(rollout.Store)
	if !ok {
		return nil, fmt.Errorf("the store (%T) keeps no rollouts", n.Store)
	}
	admin := &site.Admin{Store: models, Operator: "bench"}
	if _, err := admin.AddModel(ctx, updateModel, vitalgate.BindingAssigned, nil); err != nil && vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		return nil, fmt.Errorf("model add: %w", err)
	}
	devs, err := b.enrollAs(ctx, srv, "bench-update", updateModel)
	if err != nil {
		return nil, err
	}

	// The release: a file of random bytes (incompressible), published with a key dir of
	// threshold 1, so that it is live at once.
	b.progress("   publishing a %s release ...", formatBytes(b.opt.UpdateSize))
	target := filepath.Join(b.tmp, "update-"+updateFile)
	if err := writeRandomFile(target, b.opt.UpdateSize); err != nil {
		return nil, err
	}
	keys, err := updates.InitKeys(filepath.Join(b.tmp, "update-keys"), 1, nil)
	if err != nil {
		return nil, err
	}
	alog, err := n.AuditLog("bench")
	if err != nil {
		return nil, err
	}
	repo, err := n.Updates(alog, max(b.opt.UpdateSize, updates.DefaultMaxTargetSize))
	if err != nil {
		return nil, err
	}
	f, err := os.Open(target) // #nosec G304 -- the run's own temporary file
	if err != nil {
		return nil, err
	}
	_, err = repo.Publish(ctx, "bench", keys, updates.Release{Model: updateModel, Version: updateVersion, FileName: updateFile, Content: f})
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("update publish: %w", err)
	}
	root, err := repo.Root(ctx)
	if err != nil {
		return nil, err
	}
	b.done("published %s %s (%s), live", updateModel, updateVersion, formatBytes(b.opt.UpdateSize))

	// The rollout and the devices picking it up.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	ro := &rollout.Service{Store: rst, Releases: repo, Audit: alog}
	start := time.Now()
	r, err := ro.Start(ctx, "bench", rollout.Plan{Model: updateModel, Version: updateVersion, HealthWindow: -1})
	if err != nil {
		return nil, fmt.Errorf("update rollout: %w", err)
	}
	fig := b.runDevices(ctx, devs, start, func(ctx context.Context, i int, d *benchDevice) (devResult, error) {
		return b.updateDevice(ctx, srv, d, root, filepath.Join(b.tmp, "update-devices", fmt.Sprint(i)))
	})
	b.done("%-34s 90%% in %s, %.1f MB/s of targets (%d devices, %d failed)", "update (Vitalgate):", fig.at(90, len(devs)).Round(time.Millisecond),
		fig.rate()/1e6, len(fig.done), fig.failed)
	if fig.firstErr != "" {
		fmt.Fprintf(b.opt.Stderr, "   first error: %s\n", fig.firstErr)
	}

	// The rollout's own figures, as update status shows them.
	var lat rollout.Latency
	if sts, err := ro.Status(ctx, updateModel); err != nil {
		return nil, err
	} else if len(sts) == 1 && sts[0].Rollout.ID == r.ID {
		lat = sts[0].Latency
	}

	// Baseline: the same file over the same TLS, served from disk by net/http.
	url, stop, err := srv.startBaseline(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		f, err := os.Open(target) // #nosec G304 -- the run's own temporary file
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(w, req, updateFile, time.Time{}, f)
	}))
	if err != nil {
		return nil, err
	}
	start = time.Now()
	base := b.runDevices(ctx, devs, start, func(ctx context.Context, i int, d *benchDevice) (devResult, error) {
		return plainDownload(ctx, srv, d, url+"/"+updateFile, filepath.Join(b.tmp, "update-baseline", fmt.Sprint(i)))
	})
	stop()
	b.done("%-34s 90%% in %s, %.1f MB/s (%d devices, %d failed)", "update baseline (plain HTTPS file):", base.at(90, len(devs)).Round(time.Millisecond),
		base.rate()/1e6, len(base.done), base.failed)
	if base.firstErr != "" {
		return nil, fmt.Errorf("baseline download: %s", base.firstErr)
	}

	const bn = "the same file over the same TLS, from disk"
	note := ""
	if fig.failed > 0 {
		note = fmt.Sprintf("%d devices failed, first: %s", fig.failed, fig.firstErr)
	}
	secs := func(d time.Duration) float64 {
		if d < 0 {
			return 0
		}
		return d.Seconds()
	}
	size := formatBytes(b.opt.UpdateSize)
	rows := []Row{
		{Scenario: "update", Metric: fmt.Sprintf("time from the rollout's start to 90%% of %d devices installed (offer, TUF verify, %s target, reports)", len(devs), size),
			Unit: "s", Value: secs(fig.at(90, len(devs))), Baseline: secs(base.at(90, len(devs))), BaselineName: bn, Lower: true, Note: note},
		{Scenario: "update", Metric: fmt.Sprintf("time from the rollout's start to 100%% of %d devices installed", len(devs)),
			Unit: "s", Value: secs(fig.at(100, len(devs))), Baseline: secs(base.at(100, len(devs))), BaselineName: bn, Lower: true, Note: note},
		{Scenario: "update", Metric: fmt.Sprintf("target bytes/s served to %d concurrent devices (from the store, mutual TLS)", len(devs)),
			Unit: "MB/s", Value: fig.rate() / 1e6, Baseline: base.rate() / 1e6, BaselineName: bn, Note: note},
		{Scenario: "update", Metric: "devices installed, counted in the store (the rollout's own figures)",
			Unit: "devices", Value: float64(lat.Installed),
			Note: fmt.Sprintf("%d targeted, %d passed, %d failed; the rollout's own 90%% figure: %.3f s", lat.Targeted, lat.Passed, lat.Failed, secs(lat.To90))},
	}
	return rows, nil
}

// runDevices runs one pass: every device calls do at once; it returns what they measured.
func (b *benchRun) runDevices(ctx context.Context, devs []*benchDevice, start time.Time,
	do func(ctx context.Context, i int, d *benchDevice) (devResult, error)) *updateRun {
	out := &updateRun{}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		seen int
	)
	for i, d := range devs {
		wg.Go(func() {
			res, err := do(ctx, i, d)
			out.record(&mu, start, res, err)
			mu.Lock()
			seen++
			b.progress("   update: %d/%d devices done", seen, len(devs))
			mu.Unlock()
		})
	}
	wg.Wait()
	b.clearProgress()
	return out
}

// updateDevice is one device picking up its rollout with the update client: it polls for
// its offer, then reports downloading, verifies, downloads and reports installed and
// healthy. It returns when its target download began and ended. The device's state dir is
// removed at the end (the bench keeps no images).
func (b *benchRun) updateDevice(ctx context.Context, srv *benchServer, d *benchDevice, root []byte, dir string) (devResult, error) {
	defer os.RemoveAll(dir)
	hc := benchClient(srv.n.CA.Pool(), d.cert)
	hc.Timeout = 0 // whole downloads are bounded by the client's stall timeout
	defer hc.CloseIdleConnections()
	c, err := updateclient.New(updateclient.Config{ServerURL: srv.url, HTTPClient: hc, TrustedRoot: root,
		MetadataDir: filepath.Join(dir, "metadata"), TargetsDir: filepath.Join(dir, "targets"), Model: updateModel,
		Retry: updateclient.Retry{Attempts: 3, Initial: 100 * time.Millisecond, Max: time.Second}, UserAgent: "vitalgate-bench"})
	if err != nil {
		return devResult{}, err
	}
	var o updateclient.Offer
	for {
		var ok bool
		if o, ok, err = c.Offer(ctx); err != nil {
			return devResult{}, fmt.Errorf("%s: offer: %w", d.id, err)
		} else if ok {
			break
		}
		select { // not offered yet: ask again shortly
		case <-ctx.Done():
			return devResult{}, fmt.Errorf("%s: never offered the release: %w", d.id, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	report := func(s updateclient.State) error {
		if err := c.Report(ctx, updateclient.Report{Version: o.Version, State: s}); err != nil {
			return fmt.Errorf("%s: report %s: %w", d.id, s, err)
		}
		return nil
	}
	if err := report(updateclient.StateDownloading); err != nil {
		return devResult{}, err
	}
	t, err := c.Verify(ctx, o)
	if err != nil {
		return devResult{}, fmt.Errorf("%s: verify: %w", d.id, err)
	}
	dlStart := time.Now()
	if _, err := c.Download(ctx, t); err != nil {
		return devResult{}, fmt.Errorf("%s: download: %w", d.id, err)
	}
	dlEnd := time.Now()
	if err := report(updateclient.StateInstalled); err != nil {
		return devResult{}, err
	}
	res := devResult{finished: time.Now(), dlStart: dlStart, dlEnd: dlEnd, bytes: t.Length}
	return res, report(updateclient.StateHealthy)
}

// plainDownload is the baseline of one device: a GET of the file over the device's client,
// streamed to a file on disk.
func plainDownload(ctx context.Context, srv *benchServer, d *benchDevice, url, dir string) (devResult, error) {
	defer os.RemoveAll(dir)
	hc := benchClient(srv.n.CA.Pool(), d.cert)
	hc.Timeout = 0
	defer hc.CloseIdleConnections()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return devResult{}, err
	}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return devResult{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return devResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return devResult{}, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(filepath.Join(dir, updateFile)) // #nosec G304 -- the run's own temporary directory
	if err != nil {
		return devResult{}, err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != resp.ContentLength {
		err = errors.New("short download")
	}
	end := time.Now()
	return devResult{finished: end, dlStart: start, dlEnd: end, bytes: n}, err
}

// writeRandomFile writes size random bytes to path, streaming.
func writeRandomFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the run's own temporary directory
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// formatBytes renders a size in binary units: "4 MiB", "512 KiB", "100 B".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.4g MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.4g KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
