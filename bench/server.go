package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/node"
	"github.com/vitalgate/vitalgate/simulator"
)

// benchServer is the server under test, running in this process on a temporary data dir.
type benchServer struct {
	n        *node.Node
	url      string // https://127.0.0.1:PORT
	mllpAddr string // 127.0.0.1:PORT, when hl7 is selected
	cfg      httpapi.Config
	cert     tls.Certificate
	stop     func()
	dir      string           // the data dir
	store    node.StoreConfig // its database
}

// server starts the server under test on first use: `vitalgate init` and `vitalgate serve`
// in-process, with httpapi.DefaultConfig() except the rate and per-address limits (raised
// so that the benchmark measures throughput, not the limiter), logging to a file.
func (b *benchRun) server(ctx context.Context) (*benchServer, error) {
	if b.srv != nil {
		return b.srv, nil
	}
	srv, err := b.newServer(ctx, "data")
	if err != nil {
		return nil, err
	}
	b.srv = srv
	return srv, nil
}

// newServer starts a server under test on a data dir of its own, named name in the run's
// temporary directory (see server), with the options tweak changes; close stops it.
func (b *benchRun) newServer(ctx context.Context, name string, tweak ...func(*node.Options)) (*benchServer, error) {
	dir := filepath.Join(b.tmp, name)
	b.progress("   creating the data dir %s and starting the server ...", name)
	sc, err := node.ParseStoreFlag(b.opt.Store)
	if err != nil {
		return nil, err
	}
	if sc.Driver == "postgres" {
		if sc.Schema, err = benchSchema(ctx, sc.DSN, b.opt.Keep); err != nil {
			return nil, err
		}
		b.cleanups = append(b.cleanups, func() { dropBenchSchema(sc.DSN, sc.Schema) })
	}
	if _, err := node.Init(ctx, dir, node.InitOptions{Store: sc, Operator: os.Getenv("USER")}, b.opt.Env); err != nil {
		return nil, err
	}
	n, err := node.Open(ctx, dir, b.opt.Env)
	if err != nil {
		return nil, err
	}
	cert, err := n.ServerCertificate()
	if err != nil {
		_ = n.Close()
		return nil, err
	}
	cfg := httpapi.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	// The benchmark measures throughput, not the limiter: every client shares 127.0.0.1
	// and each device sends as fast as it is answered.
	const unlimited = 1e9
	cfg.RatePerCaller, cfg.BurstPerCaller = unlimited, int(unlimited)
	cfg.RatePerIP, cfg.BurstPerIP = unlimited, int(unlimited)
	need := b.opt.Devices + b.opt.SearchClients + 64
	if slices.Contains(b.opt.Scenarios, "connections") {
		need += b.opt.Connections
	}
	if need > cfg.MaxConns {
		cfg.MaxConns = need
		b.note(fmt.Sprintf("MaxConns raised from %d to %d for --connections %d.", httpapi.DefaultConfig().MaxConns, need, b.opt.Connections))
	}
	cfg.MaxConnsPerIP = cfg.MaxConns
	cfg.MaxHandshakesPerIP = cfg.MaxHandshakes // every client comes from 127.0.0.1
	b.note(fmt.Sprintf("Server: httpapi.DefaultConfig() except the rate limits (per caller %g/s burst %d, was %g/%d; per address %g/s burst %d, was %g/%d) and connections per address (%d, was %d), because every client comes from 127.0.0.1: the benchmark measures throughput, not the limiter.",
		cfg.RatePerCaller, cfg.BurstPerCaller, httpapi.DefaultConfig().RatePerCaller, httpapi.DefaultConfig().BurstPerCaller,
		cfg.RatePerIP, cfg.BurstPerIP, httpapi.DefaultConfig().RatePerIP, httpapi.DefaultConfig().BurstPerIP,
		cfg.MaxConnsPerIP, httpapi.DefaultConfig().MaxConnsPerIP))
	b.note(fmt.Sprintf("Clients run in the server's process and share its %d CPUs (the connections scenario's clients run in a child process); baselines use the same clients, TLS settings and CPUs.", runtime.NumCPU()))

	opt := node.Options{HTTP: cfg}
	if slices.Contains(b.opt.Scenarios, "hl7") || slices.Contains(b.opt.Scenarios, "hl7-lab") || slices.Contains(b.opt.Scenarios, "ingest-history") {
		if opt.MLLPAddr, err = freeLoopbackAddr(); err != nil {
			_ = n.Close()
			return nil, err
		}
	}
	logFile, err := os.OpenFile(filepath.Join(b.tmp, name+"-server.log"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the run's own temporary directory and a fixed name
	if err != nil {
		_ = n.Close()
		return nil, err
	}
	opt.Logger = slog.New(slog.NewJSONHandler(logFile, nil))
	for _, f := range tweak {
		f(&opt)
	}
	srvCtx, stopServer := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	opt.Ready = func(a string) { ready <- a }
	var wg sync.WaitGroup
	var srvErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		srvErr = n.Serve(srvCtx, opt)
		close(ready)
	}()
	addr, ok := <-ready
	if !ok {
		stopServer()
		_ = logFile.Close()
		_ = n.Close()
		return nil, fmt.Errorf("server did not start: %w", srvErr)
	}
	srv := &benchServer{n: n, url: "https://" + addr, mllpAddr: opt.MLLPAddr, cfg: cfg, cert: cert, dir: dir, store: sc, stop: func() {
		stopServer()
		wg.Wait()
		_ = logFile.Close()
		_ = n.Close()
	}}
	b.servers = append(b.servers, srv)
	b.done("server listening on %s (log %s)", srv.url, logFile.Name())
	return srv, nil
}

// freeLoopbackAddr returns a loopback address with a port that was free a moment ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// baselineTLS returns the TLS settings of the production listener (httpapi.Server.TLSConfig)
// without the registry lookup at the handshake: TLS 1.3, the same certificate, client
// certificates verified against the same CA when given, the same ALPN and curves.
func (s *benchServer) baselineTLS() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{s.cert},
		ClientAuth:       tls.VerifyClientCertIfGiven,
		ClientCAs:        s.n.CA.Pool(),
		NextProtos:       []string{"h2", "http/1.1"},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384},
	}
}

// startBaseline serves h over the baseline TLS settings on a new loopback port, with the
// production server's timeouts, and returns its URL and a stop function.
func (s *benchServer) startBaseline(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{
		Handler: h, TLSConfig: s.baselineTLS(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout, ReadTimeout: s.cfg.ReadTimeout, WriteTimeout: s.cfg.WriteTimeout,
		IdleTimeout: s.cfg.IdleTimeout, MaxHeaderBytes: s.cfg.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(tls.NewListener(ln, hs.TLSConfig))
	}()
	return "https://" + ln.Addr().String(), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		<-done
	}, nil
}

// benchDevice is an enrolled device: its identity and the certificate it got over EST.
type benchDevice struct {
	id, patient string
	kind        string
	cert        *tls.Certificate
	gen         *simulator.Generator
}

// enrolledDevices registers --devices devices and enrolls them over EST with the
// simulator, as real devices do, on first use.
func (b *benchRun) enrolledDevices(ctx context.Context) ([]*benchDevice, error) {
	if b.devices != nil {
		return b.devices, nil
	}
	srv, err := b.server(ctx)
	if err != nil {
		return nil, err
	}
	devs, err := b.enroll(ctx, srv)
	if err != nil {
		return nil, err
	}
	b.devices = devs
	return devs, nil
}

// benchDeviceModel is the model of the devices the load scenarios register (not a
// registered model: any binding rule is the default one).
const benchDeviceModel = "Vitalgate bench"

// enroll registers --devices devices on srv and enrolls them over EST with the simulator.
func (b *benchRun) enroll(ctx context.Context, srv *benchServer) ([]*benchDevice, error) {
	return b.enrollAs(ctx, srv, "bench", benchDeviceModel)
}

// enrollAs registers --devices devices of model on srv, with ids PREFIX-device-NNNN, and
// enrolls them over EST with the simulator.
func (b *benchRun) enrollAs(ctx context.Context, srv *benchServer, prefix, model string) ([]*benchDevice, error) {
	cfg := simulator.Config{ServerURL: srv.url, CAPool: srv.n.CA.Pool()}
	devs := make([]*benchDevice, b.opt.Devices)
	sims := make([]*simulator.Device, b.opt.Devices)
	for i := range devs {
		b.progress("   registering devices: %d/%d", i, len(devs))
		d := &benchDevice{id: fmt.Sprintf("%s-device-%04d", prefix, i+1), patient: fmt.Sprintf("%s-patient-%04d", prefix, i+1), kind: simulator.KindMonitor}
		secret, err := b.opt.AddDevice(ctx, srv.n, d.id, d.patient, model)
		if err != nil {
			return nil, err
		}
		if sims[i], err = simulator.NewDevice(cfg, simulator.DeviceConfig{ID: d.id, PatientID: d.patient, EnrollSecret: secret, Kind: d.kind}); err != nil {
			return nil, err
		}
		if d.gen, err = simulator.NewGenerator(d.kind, rand.Reader); err != nil {
			return nil, err
		}
		devs[i] = d
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		enrolled int
		firstErr error
	)
	sem := make(chan struct{}, 8)
	for i, sd := range sims {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := sd.Enroll(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("enroll %s: %w", sd.ID(), err)
			}
			devs[i].cert = sd.TLSCertificate()
			enrolled++
			b.progress("   enrolling devices over EST: %d/%d", enrolled, len(devs))
			sd.Close()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	b.done("%d devices registered and enrolled over EST", len(devs))
	return devs, nil
}

// benchClient returns an HTTP client with the simulator's device settings: TLS 1.3 only,
// trusting only the server's CA, presenting the device certificate, keep-alive, HTTP/2
// when offered. cert may be nil for a client without a certificate (an EHR).
func benchClient(pool *x509.CertPool, cert *tls.Certificate) *http.Client {
	tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// closeClients closes the idle connections of clients.
func closeClients(clients []*http.Client) {
	for _, c := range clients {
		c.CloseIdleConnections()
	}
}

// benchDo sends one request and reads the whole answer (so the connection is reused). It
// returns the body and an error for any status other than want.
func benchDo(c *http.Client, req *http.Request, want int) ([]byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		snippet := string(body)
		if len(snippet) > 200 {
			snippet = snippet[:200] + "..."
		}
		return body, fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet)
	}
	return body, nil
}

// ms converts a latency for a row.
func ms(d time.Duration) float64 { return Millis(d) }

// latencyRows returns the p50, p99 and p99.9 rows of a figure and its baseline (nil for
// none).
func latencyRows(scenario, baseName string, fig Summary, base *Summary, p99 *Target) []Row {
	rows := []Row{
		{Scenario: scenario, Metric: "p50 latency", Unit: "ms", Value: ms(fig.P50), Lower: true},
		{Scenario: scenario, Metric: "p99 latency", Unit: "ms", Value: ms(fig.P99), Lower: true, Target: p99},
		{Scenario: scenario, Metric: "p99.9 latency", Unit: "ms", Value: ms(fig.P999), Lower: true},
	}
	if base != nil {
		for i, v := range []time.Duration{base.P50, base.P99, base.P999} {
			rows[i].Baseline, rows[i].BaselineName = ms(v), baseName
		}
	}
	return rows
}
