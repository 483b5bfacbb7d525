package simulator_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/simulator"
)

func mustDevice(tb testing.TB, cfg simulator.Config, dc simulator.DeviceConfig) *simulator.Device {
	tb.Helper()
	d, err := simulator.NewDevice(cfg, dc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	return d
}

func mustEnroll(tb testing.TB, d *simulator.Device) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Enroll(ctx); err != nil {
		tb.Fatalf("Enroll: %v", err)
	}
}

func TestEnrollAndSend(t *testing.T) {
	f := newFakeServer(t)
	for _, kind := range simulator.Kinds() {
		t.Run(kind, func(t *testing.T) {
			dc := f.addDevice("dev-"+kind, "pat-"+kind, kind)
			d := mustDevice(t, f.config(), dc)
			if _, err := d.Send(context.Background()); !errors.Is(err, simulator.ErrNotEnrolled) {
				t.Fatalf("Send before Enroll: %v, want ErrNotEnrolled", err)
			}
			mustEnroll(t, d)
			cert := d.Certificate()
			if cert == nil || cert.Subject.CommonName != dc.ID {
				t.Fatalf("certificate %v", cert)
			}
			if tc := d.TLSCertificate(); tc == nil || tc.PrivateKey == nil {
				t.Fatal("no TLS certificate")
			}
			before := f.accepted.Load()
			res, err := d.Send(context.Background())
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			want := len(simulator.KindVitals(kind))
			if res.Accepted != want || res.Sent() != want {
				t.Errorf("result %+v, want %d accepted", res, want)
			}
			if got := f.accepted.Load() - before; got != int64(want) {
				t.Errorf("server stored %d, want %d", got, want)
			}
		})
	}
}

func TestEnrollFailures(t *testing.T) {
	f := newFakeServer(t)
	dc := f.addDevice("dev-1", "pat-1", simulator.KindMonitor)
	other := mustCA(t, "Somebody else's CA")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("server not signed by the trusted CA", func(t *testing.T) {
		cfg := f.config()
		cfg.CAPool = other.pool
		err := mustDevice(t, cfg, dc).Enroll(ctx)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("Enroll: %v, want a certificate verification error", err)
		}
	})
	t.Run("cacerts holds another CA", func(t *testing.T) {
		f.set(func(f *fakeServer) { f.cacertsCA = other.cert })
		defer f.set(func(f *fakeServer) { f.cacertsCA = nil })
		before := f.enrolls.Load()
		err := mustDevice(t, f.config(), dc).Enroll(ctx)
		if err == nil || !strings.Contains(err.Error(), "cacerts") {
			t.Errorf("Enroll: %v, want a cacerts error", err)
		}
		if f.enrolls.Load() != before {
			t.Error("device enrolled with a server whose CA it does not trust")
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad := dc
		bad.EnrollSecret = "guess"
		err := mustDevice(t, f.config(), bad).Enroll(ctx)
		var se *simulator.StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || se.Diagnostics == "" {
			t.Errorf("Enroll: %v, want a 401 StatusError with diagnostics", err)
		}
	})
	t.Run("Run fails when a device cannot enroll", func(t *testing.T) {
		bad := dc
		bad.ID, bad.EnrollSecret = "dev-2", "guess"
		err := simulator.Run(ctx, f.config(dc, bad), nil)
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("Run: %v, want the enrollment error", err)
		}
	})
}

func TestCAFile(t *testing.T) {
	f := newFakeServer(t)
	dc := f.addDevice("dev-file", "pat-1", simulator.KindThermometer)
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := f.config()
	cfg.CAPool, cfg.CAFile = nil, path
	mustEnroll(t, mustDevice(t, cfg, dc))
}

func TestReenroll(t *testing.T) {
	f := newFakeServer(t)
	d := mustDevice(t, f.config(), f.addDevice("dev-re", "pat-1", simulator.KindScale))
	if err := d.Reenroll(context.Background()); !errors.Is(err, simulator.ErrNotEnrolled) {
		t.Fatalf("Reenroll before Enroll: %v", err)
	}
	mustEnroll(t, d)
	if _, err := d.Send(context.Background()); err != nil { // a keep-alive connection with the old certificate
		t.Fatal(err)
	}
	old := d.Certificate()
	if err := d.Reenroll(context.Background()); err != nil {
		t.Fatalf("Reenroll: %v", err)
	}
	if seen := <-f.reenrollOld; !seen.Equal(old) {
		t.Error("simplereenroll was not authenticated with the current certificate")
	}
	cur := d.Certificate()
	if cur.Equal(old) || cur.Subject.CommonName != "dev-re" {
		t.Fatal("certificate not renewed")
	}
	if cur.PublicKeyAlgorithm != x509.ECDSA || string(cur.RawSubjectPublicKeyInfo) == string(old.RawSubjectPublicKeyInfo) {
		t.Error("renewed certificate does not carry a fresh P-256 key")
	}
	if res, err := d.Send(context.Background()); err != nil || res.Accepted != 1 {
		t.Errorf("Send after Reenroll: %+v, %v", res, err)
	}
}

func TestRenewalDue(t *testing.T) {
	f := newFakeServer(t)
	f.set(func(f *fakeServer) { f.validity = 3 * time.Second })
	cfg := f.config(f.addDevice("dev-short", "pat-1", simulator.KindThermometer))
	cfg.Interval = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil && f.reenrolls.Load() == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	if err := simulator.Run(ctx, cfg, nil); err != nil {
		t.Fatal(err)
	}
	if f.reenrolls.Load() == 0 {
		t.Error("device did not re-enroll a certificate near expiry")
	}
}

func TestRunStreams(t *testing.T) {
	f := newFakeServer(t)
	cfg := f.config(
		f.addDevice("mon-1", "pat-1", simulator.KindMonitor),
		f.addDevice("thermo-1", "pat-2", simulator.KindThermometer),
		f.addDevice("ox-1", "pat-3", simulator.KindPulseOximeter),
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		statuses []simulator.Stats
	)
	status := func(s simulator.Stats) {
		mu.Lock()
		defer mu.Unlock()
		statuses = append(statuses, s)
		if s.Elapsed > 1200*time.Millisecond {
			cancel()
		}
	}
	start := time.Now()
	if err := simulator.Run(ctx, cfg, status); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second { // a hang bound, not a speed check
		t.Errorf("Run took %v", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(statuses) < 2 {
		t.Fatalf("%d status reports, want at least 2", len(statuses))
	}
	last := statuses[len(statuses)-1]
	if last.Devices != 3 || last.Rejected != 0 || last.Throttled != 0 || last.Failed != 0 || last.LastError != "" {
		t.Errorf("final stats %+v", last)
	}
	// 7 observations a round every 20 ms for more than a second: at least a few rounds must
	// have gone through (not a throughput check: machines here are shared and noisy).
	if last.Accepted < 7*3 {
		t.Errorf("accepted %d, want at least %d", last.Accepted, 7*3)
	}
	if int64(last.Accepted) != f.accepted.Load() {
		t.Errorf("simulator counted %d accepted, server stored %d", last.Accepted, f.accepted.Load())
	}
	if statuses[0].Rate <= 0 && statuses[1].Rate <= 0 {
		t.Errorf("rates %v %v", statuses[0].Rate, statuses[1].Rate)
	}
	line := regexp.MustCompile(`^devices 3 \| accepted \d+ \| rejected 0 \| throttled 0 \| failed 0 \| \d+\.\d obs/s$`)
	if !line.MatchString(last.String()) {
		t.Errorf("String() = %q", last.String())
	}
}

func TestBatch(t *testing.T) {
	f := newFakeServer(t)
	for _, tt := range []struct {
		name       string
		bundleType string
		batchSize  int
	}{
		{"batch of 10", "batch", 10},
		{"transaction of 3", "transaction", 3},
		{"batch of 1", "", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config()
			cfg.BatchSize, cfg.BundleType = tt.batchSize, tt.bundleType
			d := mustDevice(t, cfg, f.addDevice("batch-"+strings.ReplaceAll(tt.name, " ", "-"), "pat-1", simulator.KindMonitor))
			mustEnroll(t, d)
			posts := f.fhirPosts.Load()
			res, err := d.Send(context.Background())
			if err != nil || res.Accepted != tt.batchSize || res.Sent() != tt.batchSize {
				t.Errorf("Send: %+v, %v", res, err)
			}
			if got := f.fhirPosts.Load() - posts; got != 1 {
				t.Errorf("%d requests, want one Bundle", got)
			}
		})
	}
	t.Run("entries rejected", func(t *testing.T) {
		f.set(func(f *fakeServer) { f.rejectOddEntries, f.diagnostics = true, "heart rate out of range" })
		defer f.set(func(f *fakeServer) { f.rejectOddEntries, f.diagnostics = false, "" })
		cfg := f.config()
		cfg.BatchSize = 6
		d := mustDevice(t, cfg, f.addDevice("batch-rej", "pat-1", simulator.KindPulseOximeter))
		mustEnroll(t, d)
		res, err := d.Send(context.Background())
		if err != nil || res.Accepted != 3 || res.Rejected != 3 || res.Diagnostics != "heart rate out of range" {
			t.Errorf("Send: %+v, %v", res, err)
		}
	})
}

func TestSendOutcomes(t *testing.T) {
	f := newFakeServer(t)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       simulator.Result
		wantPosts  int64
		wantErr    bool
	}{
		{
			name: "422 rejected with diagnostics", status: http.StatusUnprocessableEntity,
			want:      simulator.Result{Rejected: 4, Diagnostics: "value out of range"},
			wantPosts: 4,
		},
		{
			name: "429 throttled holds back the round", status: http.StatusTooManyRequests, retryAfter: "3",
			want:      simulator.Result{Throttled: 4, Diagnostics: "", RetryAfter: 3 * time.Second},
			wantPosts: 1,
		},
		{
			name: "503 with Retry-After throttled", status: http.StatusServiceUnavailable, retryAfter: "1",
			want:      simulator.Result{Throttled: 4, RetryAfter: time.Second},
			wantPosts: 1,
		},
		{
			name: "500 failed", status: http.StatusInternalServerError,
			want:      simulator.Result{Failed: 4},
			wantPosts: 4, wantErr: true,
		},
	}
	d := mustDevice(t, f.config(), f.addDevice("mon-out", "pat-1", simulator.KindMonitor))
	mustEnroll(t, d)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.set(func(f *fakeServer) {
				f.fhirStatus, f.retryAfter, f.diagnostics = tt.status, tt.retryAfter, "value out of range"
			})
			defer f.set(func(f *fakeServer) { f.fhirStatus, f.retryAfter, f.diagnostics = 0, "", "" })
			posts := f.fhirPosts.Load()
			res, err := d.Send(context.Background())
			if (err != nil) != tt.wantErr {
				t.Errorf("error %v, want error %v", err, tt.wantErr)
			}
			var se *simulator.StatusError
			if tt.wantErr && (!errors.As(err, &se) || se.StatusCode != tt.status) {
				t.Errorf("error %v, want a StatusError %d", err, tt.status)
			}
			if res != tt.want {
				t.Errorf("result %+v, want %+v", res, tt.want)
			}
			if got := f.fhirPosts.Load() - posts; got != tt.wantPosts {
				t.Errorf("%d posts, want %d", got, tt.wantPosts)
			}
		})
	}
}

func TestRunCountsRejectedAndThrottled(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		check  func(simulator.Stats) bool
	}{
		{"rejected", http.StatusUnprocessableEntity, func(s simulator.Stats) bool {
			return s.Rejected > 0 && s.Accepted == 0 && strings.Contains(s.LastError, "temperature out of range")
		}},
		{"throttled", http.StatusTooManyRequests, func(s simulator.Stats) bool {
			return s.Throttled > 0 && s.Accepted == 0 && s.Rejected == 0
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.set(func(f *fakeServer) { f.fhirStatus, f.diagnostics = tt.status, "temperature out of range" })
			cfg := f.config(f.addDevice("thermo", "pat-1", simulator.KindThermometer))
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			var last simulator.Stats
			if err := simulator.Run(ctx, cfg, func(s simulator.Stats) { last = s }); err != nil {
				t.Fatal(err)
			}
			if !tt.check(last) {
				t.Errorf("stats %+v (%s)", last, last)
			}
		})
	}
}

func TestRunCancelStopsPromptly(t *testing.T) {
	f := newFakeServer(t)
	f.set(func(f *fakeServer) { f.hang = true })
	cfg := f.config(
		f.addDevice("mon-hang", "pat-1", simulator.KindMonitor),
		f.addDevice("ox-hang", "pat-2", simulator.KindPulseOximeter),
	)
	cfg.ShutdownGrace = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var last simulator.Stats
	done := make(chan error, 1)
	go func() { done <- simulator.Run(ctx, cfg, func(s simulator.Stats) { last = s }) }()
	select {
	case <-f.inFlight:
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the server")
	}
	cancel()
	// Bounded wait: a hang detector, not a latency assertion (machines here are noisy).
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
	if last.Accepted != 0 || last.Failed == 0 {
		t.Errorf("stats %+v: requests cancelled in flight must count as failed", last)
	}
}

func TestConfigValidate(t *testing.T) {
	pool := x509.NewCertPool()
	good := simulator.DeviceConfig{ID: "d1", PatientID: "p1", EnrollSecret: "s", Kind: simulator.KindScale}
	tests := []struct {
		name   string
		mutate func(*simulator.Config)
		ok     bool
	}{
		{"valid", func(*simulator.Config) {}, true},
		{"no server", func(c *simulator.Config) { c.ServerURL = "" }, false},
		{"plain http", func(c *simulator.Config) { c.ServerURL = "http://127.0.0.1:8443" }, false},
		{"no CA", func(c *simulator.Config) { c.CAPool = nil }, false},
		{"negative interval", func(c *simulator.Config) { c.Interval = -time.Second }, false},
		{"negative batch", func(c *simulator.Config) { c.BatchSize = -1 }, false},
		{"bad bundle type", func(c *simulator.Config) { c.BundleType = "history" }, false},
		{"unknown kind", func(c *simulator.Config) { c.Devices[0].Kind = "toaster" }, false},
		{"no secret", func(c *simulator.Config) { c.Devices[0].EnrollSecret = "" }, false},
		{"no patient", func(c *simulator.Config) { c.Devices[0].PatientID = "" }, false},
		{"duplicate id", func(c *simulator.Config) { c.Devices = append(c.Devices, c.Devices[0]) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := simulator.Config{ServerURL: "https://127.0.0.1:8443", CAPool: pool, Devices: []simulator.DeviceConfig{good}}
			tt.mutate(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestStatsString(t *testing.T) {
	s := simulator.Stats{Devices: 3, Accepted: 1234, Rate: 3}
	if got, want := s.String(), "devices 3 | accepted 1234 | rejected 0 | throttled 0 | failed 0 | 3.0 obs/s"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	s.LastError = "boom"
	if !strings.HasSuffix(s.String(), " | last error: boom") {
		t.Errorf("String() = %q", s.String())
	}
}
