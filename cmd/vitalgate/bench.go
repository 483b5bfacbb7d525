package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/bench"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/mllp"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/simulator"
	"github.com/vitalgate/vitalgate/sqlite"
)

// benchScenarios are the scenarios of `vitalgate bench`, in the order "all" runs them.
var benchScenarios = []string{"ingest", "ingest-batch", "search", "hl7", "connections", "audit-append", "audit-verify"}

// benchScenarioHelp describes each scenario and its baseline for --help.
var benchScenarioHelp = map[string]string{
	"ingest":       "single Observation POSTs from --devices devices over kept-alive mutual TLS; baseline: a handler that reads and discards the body, same TLS and clients",
	"ingest-batch": "Bundles of 100 Observations; baseline: the same rows sealed and stored with CreateResources, no HTTP, no validation",
	"search":       "a patient's last 24 h (GET /fhir/Observation?patient=&date=ge) among --observations stored; baseline: the same result bytes served from memory over the same TLS",
	"hl7":          "IHE PCD-01 ORU^R01 over MLLP/TLS answered AA; baseline: an MLLP echo of the same frames over the same TLS",
	"connections":  "memory per idle TLS-connected device at --connections connections (clients in a child process)",
	"audit-append": "audit entries appended durably from --devices goroutines with the checkpointer running",
	"audit-verify": "audit.Verify over the store on an --audit-entries log; baseline: SHA-256 over the same bytes",
}

// benchOptions are the flags of `vitalgate bench`.
type benchOptions struct {
	scenarios     []string
	duration      time.Duration
	warmup        time.Duration
	devices       int
	observations  int
	auditEntries  int
	connections   int
	searchClients int
	out           string
	cpuprofile    string
	keep          bool
	store         string // "sqlite" or a PostgreSQL DSN (a fresh schema is made for the run)
}

// runBench runs `vitalgate bench`: it starts the real server on a temporary data dir on
// loopback, drives it with real clients over mutual TLS, measures each scenario and its
// same-run baseline, prints a table and writes CSV, JSON, Markdown and an SVG chart of the
// ratios to --out.
func (m *Main) runBench(ctx context.Context, args []string) error {
	if m.Now == nil {
		m.Now = time.Now
	}
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	fs := m.flags("bench", "bench [--scenario NAME|all] [--duration 20s] [--devices 64] [--out DIR] [flags]")
	scenario := fs.String("scenario", "all", "scenario to run, a comma-separated list, or all: "+strings.Join(benchScenarios, ", "))
	var opt benchOptions
	fs.DurationVar(&opt.duration, "duration", 20*time.Second, "measured time of each load run (a scenario with a baseline runs twice)")
	fs.DurationVar(&opt.warmup, "warmup", 2*time.Second, "unmeasured time before each load run (connections, caches)")
	fs.IntVar(&opt.devices, "devices", 64, "concurrent devices (ingest, ingest-batch, hl7) and audit writers (audit-append)")
	fs.IntVar(&opt.observations, "observations", 200_000, "stored observations for search (the target is stated at 1 000 000; scaled down by default to load in seconds)")
	fs.IntVar(&opt.auditEntries, "audit-entries", 200_000, "audit log size for audit-verify (the target is stated at 1 000 000)")
	fs.IntVar(&opt.connections, "connections", 2000, "idle device connections for the connections scenario (the target is stated at 10 000)")
	fs.IntVar(&opt.searchClients, "search-clients", 8, "concurrent EHR clients for search")
	fs.StringVar(&opt.out, "out", "", "directory for results.csv, results.json, results.md and ratios.svg (default: a new temporary directory)")
	fs.StringVar(&opt.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run (server and clients) to this file")
	fs.BoolVar(&opt.keep, "keep", false, "keep the temporary data dirs and server log")
	fs.StringVar(&opt.store, "store", "sqlite", "database of the server under test: sqlite, or a postgres:// URL (a fresh schema is created for the run and dropped after)")
	idleDir := fs.String("idle-clients", "", "internal: run as the connections scenario's client process with the credentials in this directory")
	idleAddr := fs.String("idle-addr", "", "internal: server address for --idle-clients")
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "Usage: vitalgate bench [--scenario NAME|all] [--duration 20s] [--devices 64] [--out DIR] [flags]\n\n")
		fmt.Fprintf(m.Stderr, "Starts the real server on a temporary data dir on loopback and measures it against baselines\nmeasured in the same run. Scenarios:\n")
		for _, s := range benchScenarios {
			fmt.Fprintf(m.Stderr, "  %-13s %s\n", s, benchScenarioHelp[s])
		}
		fmt.Fprintln(m.Stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *idleDir != "" {
		return m.benchIdleClients(ctx, *idleDir, *idleAddr, opt.connections)
	}
	if *scenario == "all" {
		opt.scenarios = benchScenarios
	} else {
		for _, s := range strings.Split(*scenario, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(benchScenarios, s) {
				return fmt.Errorf("--scenario: unknown scenario %q (want all or one of %s)", s, strings.Join(benchScenarios, ", "))
			}
			if !slices.Contains(opt.scenarios, s) {
				opt.scenarios = append(opt.scenarios, s)
			}
		}
	}
	switch {
	case opt.duration < time.Second:
		return errors.New("--duration must be at least 1s")
	case opt.warmup < 0:
		return errors.New("--warmup must not be negative")
	case opt.devices < 1 || opt.devices > 1000:
		return errors.New("--devices must be between 1 and 1000")
	case opt.observations < 1440:
		return errors.New("--observations must be at least 1440 (one patient-day)")
	case opt.auditEntries < 1000:
		return errors.New("--audit-entries must be at least 1000")
	case opt.connections < 1:
		return errors.New("--connections must be at least 1")
	case opt.searchClients < 1 || opt.searchClients > 1000:
		return errors.New("--search-clients must be between 1 and 1000")
	}

	tmp, err := os.MkdirTemp("", "vitalgate-bench-")
	if err != nil {
		return err
	}
	if opt.keep {
		fmt.Fprintf(m.Stderr, "Keeping the data dirs in %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if opt.out == "" {
		if opt.out, err = os.MkdirTemp("", "vitalgate-bench-results-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(opt.out, 0o750); err != nil {
		return err
	}

	b := &benchRun{m: m, opt: opt, tmp: tmp, report: &bench.Report{
		Machine: bench.Machine(), Start: time.Now().UTC(), Settings: map[string]string{
			"scenarios": strings.Join(opt.scenarios, ","), "duration": opt.duration.String(), "warmup": opt.warmup.String(),
			"devices": fmt.Sprint(opt.devices), "observations": fmt.Sprint(opt.observations),
			"audit_entries": fmt.Sprint(opt.auditEntries), "connections": fmt.Sprint(opt.connections),
			"search_clients": fmt.Sprint(opt.searchClients),
		},
	}}
	mi := b.report.Machine
	fmt.Fprintf(m.Stderr, "Vitalgate bench on %s (%d CPUs, %s, commit %s)\n", mi.CPU, mi.NumCPU, mi.GoVersion, mi.Commit)
	b.raiseFileLimit()

	if opt.cpuprofile != "" {
		f, err := os.Create(opt.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	defer b.close()
	loadStart, _ := bench.LoadAverage()
	start := time.Now()
	for _, s := range opt.scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(m.Stderr, "== %s: %s\n", s, benchScenarioHelp[s])
		rows, err := b.scenario(ctx, s)
		b.clearProgress()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("scenario %s: %w", s, err)
		}
		b.report.Rows = append(b.report.Rows, rows...)
	}
	b.report.Duration = time.Since(start)
	loadEnd, load1 := bench.LoadAverage()
	b.report.Settings["loadavg_start"], b.report.Settings["loadavg_end"] = loadStart, loadEnd
	if load1 > float64(runtime.NumCPU()) {
		b.note(fmt.Sprintf("The machine was busy with other work: load average %s at the start and %s at the end on %d CPUs; figures and baselines share that noise, so compare ratios.",
			loadStart, loadEnd, runtime.NumCPU()))
	}
	if ctx.Err() != nil {
		fmt.Fprintln(m.Stderr, "Interrupted: reporting what was measured.")
	}
	return b.writeResults()
}

// benchRun is one run of `vitalgate bench`: the server under test and what the scenarios
// share.
type benchRun struct {
	m        *Main
	opt      benchOptions
	tmp      string
	cleanups []func() // run by close (dropping a benchmark PostgreSQL schema)
	report   *bench.Report

	srv     *benchServer   // started on first use
	devices []*benchDevice // enrolled on first use
	audit   *benchAudit    // opened on first use

	progressWidth int
}

// scenario runs one scenario and returns its rows.
func (b *benchRun) scenario(ctx context.Context, name string) ([]bench.Row, error) {
	switch name {
	case "ingest":
		return b.benchIngest(ctx)
	case "ingest-batch":
		return b.benchIngestBatch(ctx)
	case "search":
		return b.benchSearch(ctx)
	case "hl7":
		return b.benchHL7(ctx)
	case "connections":
		return b.benchConnections(ctx)
	case "audit-append":
		return b.benchAuditAppend(ctx)
	case "audit-verify":
		return b.benchAuditVerify(ctx)
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

// close stops the server and closes the stores.
func (b *benchRun) close() {
	if b.srv != nil {
		b.srv.stop()
	}
	if b.audit != nil {
		b.audit.close()
	}
	for _, f := range b.cleanups {
		f()
	}
}

// benchSchema creates a fresh PostgreSQL schema for a benchmark run.
func benchSchema(ctx context.Context, dsn string, keep bool) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("bench --store: %w", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	schema := "vg_bench_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil { // #nosec G202 -- random hex schema name
		return "", fmt.Errorf("bench --store: create schema: %w", err)
	}
	return schema, nil
}

// dropBenchSchema removes a benchmark schema.
func dropBenchSchema(dsn, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE") // #nosec G202 -- random hex schema name
		_ = conn.Close(ctx)
	}
}

// progress rewrites the progress line on standard error.
func (b *benchRun) progress(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	pad := max(b.progressWidth-len(line), 0)
	b.progressWidth = len(line)
	fmt.Fprintf(b.m.Stderr, "\r%s%s", line, strings.Repeat(" ", pad))
}

// clearProgress ends the progress line.
func (b *benchRun) clearProgress() {
	if b.progressWidth > 0 {
		fmt.Fprintf(b.m.Stderr, "\r%s\r", strings.Repeat(" ", b.progressWidth))
		b.progressWidth = 0
	}
}

// done replaces the progress line with a permanent line.
func (b *benchRun) done(format string, args ...any) {
	b.clearProgress()
	fmt.Fprintf(b.m.Stderr, "   "+format+"\n", args...)
}

// load runs one measured load with a progress line.
func (b *benchRun) load(ctx context.Context, what, unit string, workers int, call bench.Call) bench.Summary {
	s := bench.Load(ctx, bench.LoadOptions{Workers: workers, Duration: b.opt.duration, Warmup: b.opt.warmup,
		Progress: func(p bench.Progress) {
			rate := 0.0
			if p.Elapsed > 0 {
				rate = float64(p.Units) / p.Elapsed.Seconds()
			}
			b.progress("   %s: %s %2.0fs/%.0fs  %d %s (%.0f/s)  %d errors", what, p.Phase, p.Elapsed.Seconds(), p.Total.Seconds(), p.Units, unit, rate, p.Errors)
		}}, call)
	b.done("%-34s %10.0f %s/s  p50 %6.2f ms  p99 %6.2f ms  p99.9 %6.2f ms  (%d calls, %d errors)", what+":", s.UnitRate(), unit,
		bench.Millis(s.P50), bench.Millis(s.P99), bench.Millis(s.P999), s.Calls, s.Errors)
	if s.FirstErr != "" {
		fmt.Fprintf(b.m.Stderr, "   first error: %s\n", s.FirstErr)
	}
	return s
}

// raiseFileLimit raises RLIMIT_NOFILE to its hard limit, for the connections scenario and
// for many devices. The child process of the connections scenario inherits it.
func (b *benchRun) raiseFileLimit() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	b.report.Settings["rlimit_nofile"] = fmt.Sprint(rl.Cur)
}

// fileLimit returns the current RLIMIT_NOFILE.
func fileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	return rl.Cur
}

// writeResults prints the table and writes the result files.
func (b *benchRun) writeResults() error {
	rep := b.report
	fmt.Fprintln(b.m.Stdout)
	if err := rep.WriteTable(b.m.Stdout, false); err != nil {
		return err
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(b.m.Stdout, "note: %s\n", n)
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{"results.csv", rep.WriteCSV},
		{"results.json", rep.WriteJSON},
		{"results.md", func(w io.Writer) error { return rep.WriteTable(w, true) }},
		{"ratios.svg", rep.WriteSVG},
	}
	for _, f := range files {
		path := filepath.Join(b.opt.out, f.name)
		out, err := os.Create(path) // #nosec G304 -- the operator names the directory
		if err != nil {
			return err
		}
		if err := f.write(out); err != nil {
			_ = out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(b.m.Stderr, "Results: %s/{results.csv,results.json,results.md,ratios.svg} (%s in all)\n", b.opt.out, rep.Duration.Round(time.Second))
	return nil
}

// note adds a note to the report once.
func (b *benchRun) note(n string) {
	if !slices.Contains(b.report.Notes, n) {
		b.report.Notes = append(b.report.Notes, n)
	}
}

// errorNote describes failed calls of a summary for a row, or "".
func errorNote(s bench.Summary) string {
	if s.Errors == 0 {
		return ""
	}
	return fmt.Sprintf("%d failed calls, first: %s", s.Errors, s.FirstErr)
}

// benchServer is the server under test, running in this process on a temporary data dir.
type benchServer struct {
	n        *node
	url      string // https://127.0.0.1:PORT
	mllpAddr string // 127.0.0.1:PORT, when hl7 is selected
	cfg      httpapi.Config
	cert     tls.Certificate
	stop     func()
}

// server starts the server under test on first use: `vitalgate init` and `vitalgate serve`
// in-process, with httpapi.DefaultConfig() except the rate and per-address limits (raised
// so that the benchmark measures throughput, not the limiter), logging to a file.
func (b *benchRun) server(ctx context.Context) (*benchServer, error) {
	if b.srv != nil {
		return b.srv, nil
	}
	dir := filepath.Join(b.tmp, "data")
	b.progress("   creating the data dir and starting the server ...")
	sc, err := parseStoreFlag(b.opt.store)
	if err != nil {
		return nil, err
	}
	if sc.Driver == "postgres" {
		if sc.Schema, err = benchSchema(ctx, sc.DSN, b.opt.keep); err != nil {
			return nil, err
		}
		b.cleanups = append(b.cleanups, func() { dropBenchSchema(sc.DSN, sc.Schema) })
	}
	if _, err := b.m.initDataDirWith(ctx, dir, []string{"localhost", "127.0.0.1", "::1"}, sc); err != nil {
		return nil, err
	}
	n, err := b.m.openDataDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	cert, err := n.serverCertificate()
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
	need := b.opt.devices + b.opt.searchClients + 64
	if slices.Contains(b.opt.scenarios, "connections") {
		need += b.opt.connections
	}
	if need > cfg.MaxConns {
		cfg.MaxConns = need
		b.note(fmt.Sprintf("MaxConns raised from %d to %d for --connections %d.", httpapi.DefaultConfig().MaxConns, need, b.opt.connections))
	}
	cfg.MaxConnsPerIP = cfg.MaxConns
	cfg.MaxHandshakesPerIP = cfg.MaxHandshakes // every client comes from 127.0.0.1
	b.note(fmt.Sprintf("Server: httpapi.DefaultConfig() except the rate limits (per caller %g/s burst %d, was %g/%d; per address %g/s burst %d, was %g/%d) and connections per address (%d, was %d), because every client comes from 127.0.0.1: the benchmark measures throughput, not the limiter.",
		cfg.RatePerCaller, cfg.BurstPerCaller, httpapi.DefaultConfig().RatePerCaller, httpapi.DefaultConfig().BurstPerCaller,
		cfg.RatePerIP, cfg.BurstPerIP, httpapi.DefaultConfig().RatePerIP, httpapi.DefaultConfig().BurstPerIP,
		cfg.MaxConnsPerIP, httpapi.DefaultConfig().MaxConnsPerIP))
	b.note(fmt.Sprintf("Clients run in the server's process and share its %d CPUs (the connections scenario's clients run in a child process); baselines use the same clients, TLS settings and CPUs.", runtime.NumCPU()))

	var opt serveOptions
	if slices.Contains(b.opt.scenarios, "hl7") {
		if opt.mllpAddr, err = freeLoopbackAddr(); err != nil {
			_ = n.Close()
			return nil, err
		}
	}
	logFile, err := os.OpenFile(filepath.Join(b.tmp, "server.log"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		_ = n.Close()
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(logFile, nil))
	srvCtx, stopServer := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	sub := *b.m
	sub.Ready = func(a string) { ready <- a }
	var wg sync.WaitGroup
	var srvErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		srvErr = sub.serve(srvCtx, n, cfg, opt, log)
		close(ready)
	}()
	addr, ok := <-ready
	if !ok {
		stopServer()
		_ = logFile.Close()
		_ = n.Close()
		return nil, fmt.Errorf("server did not start: %w", srvErr)
	}
	b.srv = &benchServer{n: n, url: "https://" + addr, mllpAddr: opt.mllpAddr, cfg: cfg, cert: cert, stop: func() {
		stopServer()
		wg.Wait()
		_ = logFile.Close()
		_ = n.Close()
	}}
	b.done("server listening on %s (log %s)", b.srv.url, logFile.Name())
	return b.srv, nil
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
		ClientCAs:        s.n.ca.Pool(),
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
	cfg := simulator.Config{ServerURL: srv.url, CAPool: srv.n.ca.Pool()}
	devs := make([]*benchDevice, b.opt.devices)
	sims := make([]*simulator.Device, b.opt.devices)
	for i := range devs {
		b.progress("   registering devices: %d/%d", i, len(devs))
		d := &benchDevice{id: fmt.Sprintf("bench-device-%04d", i+1), patient: fmt.Sprintf("bench-patient-%04d", i+1), kind: simulator.KindMonitor}
		_, secret, err := b.m.addDevice(ctx, srv.n, d.id, d.patient, "Vitalgate bench", time.Hour)
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
	b.devices = devs
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
func ms(d time.Duration) float64 { return bench.Millis(d) }

// latencyRows returns the p50, p99 and p99.9 rows of a figure and its baseline (nil for
// none).
func latencyRows(scenario, baseName string, fig bench.Summary, base *bench.Summary, p99 *bench.Target) []bench.Row {
	rows := []bench.Row{
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

// observationBodies returns rounds of generated Observations of a device, effective now and
// earlier (one round per second).
func (d *benchDevice) observationBodies(rounds int) ([][]byte, error) {
	now := time.Now()
	var out [][]byte
	for r := range rounds {
		docs, err := d.gen.Observations(d.id, d.patient, now.Add(-time.Duration(rounds-r)*time.Second))
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

// benchIngest measures single-Observation POSTs from every device over kept-alive mutual
// TLS, against a handler that reads and discards the body over the same TLS settings with
// the same clients.
func (b *benchRun) benchIngest(ctx context.Context) ([]bench.Row, error) {
	devs, err := b.enrolledDevices(ctx)
	if err != nil {
		return nil, err
	}
	srv := b.srv
	clients := make([]*http.Client, len(devs))
	bodies := make([][][]byte, len(devs))
	for i, d := range devs {
		clients[i] = benchClient(srv.n.ca.Pool(), d.cert)
		if bodies[i], err = d.observationBodies(16); err != nil {
			return nil, err
		}
	}
	defer closeClients(clients)
	post := func(base string) bench.Call {
		next := make([]int, len(devs))
		return func(ctx context.Context, w int) (int, error) {
			body := bodies[w][next[w]%len(bodies[w])]
			next[w]++
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/fhir/Observation", bytes.NewReader(body))
			if err != nil {
				return 0, err
			}
			req.Header.Set("Content-Type", simulator.ContentTypeFHIRJSON)
			_, err = benchDo(clients[w], req, http.StatusCreated)
			return 1, err
		}
	}
	fig := b.load(ctx, "ingest (Vitalgate)", "obs", len(devs), post(srv.url))
	baseURL, stop, err := srv.startBaseline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	if err != nil {
		return nil, err
	}
	base := b.load(ctx, "ingest baseline (read+discard)", "obs", len(devs), post(baseURL))
	stop()
	const bn = "read+discard handler"
	rows := []bench.Row{{Scenario: "ingest", Metric: fmt.Sprintf("accepted/s, %d devices", len(devs)), Unit: "obs/s",
		Value: fig.UnitRate(), Baseline: base.UnitRate(), BaselineName: bn, Target: bench.RatioAtLeast(0.5), Note: errorNote(fig)}}
	return append(rows, latencyRows("ingest", bn, fig, &base, bench.AtMost(25))...), nil
}

// benchIngestBatch measures Bundles of 100 Observations posted by every device, against the
// same rows sealed the same way and stored straight into the same store with
// CreateResources (no HTTP, no decoding, no validation, no audit entry).
func (b *benchRun) benchIngestBatch(ctx context.Context) ([]bench.Row, error) {
	const perBundle = 100
	devs, err := b.enrolledDevices(ctx)
	if err != nil {
		return nil, err
	}
	srv := b.srv
	clients := make([]*http.Client, len(devs))
	bundles := make([][][]byte, len(devs))
	rows := make([][]storedRow, len(devs)) // the baseline's rows, per device
	for i, d := range devs {
		clients[i] = benchClient(srv.n.ca.Pool(), d.cert)
		for range 2 {
			docs, err := d.observationBodies((perBundle + 3) / 4)
			if err != nil {
				return nil, err
			}
			docs = docs[:perBundle]
			bundle, err := simulator.NewBundle("batch", docs, rand.Reader)
			if err != nil {
				return nil, err
			}
			bundles[i] = append(bundles[i], bundle)
			if rows[i] == nil {
				if rows[i], err = storedRows(srv.n, docs); err != nil {
					return nil, err
				}
			}
		}
	}
	defer closeClients(clients)
	next := make([]int, len(devs))
	fig := b.load(ctx, "ingest-batch (Vitalgate)", "obs", len(devs), func(ctx context.Context, w int) (int, error) {
		body := bundles[w][next[w]%len(bundles[w])]
		next[w]++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.url+"/fhir", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", simulator.ContentTypeFHIRJSON)
		resp, err := benchDo(clients[w], req, http.StatusOK)
		if err != nil {
			return 0, err
		}
		n := strings.Count(string(resp), `"status":"201`)
		if n != perBundle {
			return n, fmt.Errorf("batch-response accepted %d of %d entries", n, perBundle)
		}
		return n, nil
	})
	base := b.load(ctx, "ingest-batch baseline (CreateResources)", "obs", len(devs), func(ctx context.Context, w int) (int, error) {
		rs, err := sealRows(ctx, srv.n, rows[w])
		if err != nil {
			return 0, err
		}
		if err := srv.n.store.CreateResources(ctx, rs); err != nil {
			return 0, err
		}
		return len(rs), nil
	})
	return []bench.Row{{Scenario: "ingest-batch", Metric: fmt.Sprintf("observations/s, bundles of %d, %d devices", perBundle, len(devs)), Unit: "obs/s",
		Value: fig.UnitRate(), Baseline: base.UnitRate(), BaselineName: "CreateResources of the sealed rows", Target: bench.RatioAtLeast(0.5), Note: errorNote(fig)},
		{Scenario: "ingest-batch", Metric: "observations/s, absolute", Unit: "obs/s", Value: fig.UnitRate(), Target: bench.AtLeast(50000)},
		{Scenario: "ingest-batch", Metric: "p99 bundle latency", Unit: "ms", Value: ms(fig.P99), Baseline: ms(base.P99), BaselineName: "CreateResources", Lower: true},
	}, nil
}

// storedRow is an Observation as ingest stores it, before sealing: its stored JSON (with
// meta) and its blind indexes.
type storedRow struct {
	id        string // the resource id; empty for a fresh one at every sealing
	body      []byte
	patient   []byte
	codes     [][]byte
	effective time.Time
}

// storedRows prepares Observation documents the way ingest does (decode, meta, marshal,
// blind indexes), without validating them.
func storedRows(n *node, docs [][]byte) ([]storedRow, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	out := make([]storedRow, 0, len(docs))
	for _, doc := range docs {
		o, err := fhir.DecodeObservation(doc)
		if err != nil {
			return nil, err
		}
		id, err := ingest.NewID(now, rand.Reader)
		if err != nil {
			return nil, err
		}
		o.SetMeta(id, "1", now)
		body, err := o.Marshal()
		if err != nil {
			return nil, err
		}
		pid, _ := o.SubjectID()
		var codes [][]byte
		for _, c := range o.Codes() {
			codes = append(codes, n.vault.CodeIndex(c.System+"|"+c.Code), n.vault.CodeIndex(c.Code))
		}
		eff, _ := o.EffectiveTime()
		out = append(out, storedRow{body: body, patient: n.vault.PatientIndex(pid), codes: codes, effective: eff.UTC()})
	}
	return out, nil
}

// sealRows seals prepared rows under fresh ids, as ingest does, into resources to store.
func sealRows(ctx context.Context, n *node, rows []storedRow) ([]vitalgate.SealedResource, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	rs := make([]vitalgate.SealedResource, len(rows))
	for i, r := range rows {
		id := r.id
		if id == "" {
			var err error
			if id, err = ingest.NewID(now, rand.Reader); err != nil {
				return nil, err
			}
		}
		sealed, err := n.vault.Seal(ctx, r.patient, "Observation", id, 1, r.body)
		if err != nil {
			return nil, err
		}
		rs[i] = vitalgate.SealedResource{Type: "Observation", ID: id, Version: 1, PatientIndex: r.patient,
			CodeIndexes: r.codes, Effective: r.effective, LastUpdated: now, Body: sealed}
	}
	return rs, nil
}

// benchSearch stores --observations observations (sealed rows inserted straight into the
// store, one per minute per patient over a week, so a patient has 1440 in any 24 h) and
// measures an EHR client's search for a patient's last 24 h of vital signs, first page of
// 100, against the same result bytes served from memory over the same TLS.
func (b *benchRun) benchSearch(ctx context.Context) ([]bench.Row, error) {
	srv, err := b.server(ctx)
	if err != nil {
		return nil, err
	}
	loadedAt := time.Now().UTC().Truncate(time.Second)
	patients, err := b.loadSearchData(ctx, srv.n, loadedAt)
	if err != nil {
		return nil, err
	}
	token, err := b.ehrToken(ctx, srv)
	if err != nil {
		return nil, err
	}
	from := loadedAt.Add(-24 * time.Hour).Format("2006-01-02T15:04:05Z")
	query := func(base, patient string) string {
		return base + "/fhir/Observation?patient=" + patient + "&date=ge" + from + "&_count=100"
	}
	clients := make([]*http.Client, b.opt.searchClients)
	for i := range clients {
		clients[i] = benchClient(srv.n.ca.Pool(), nil)
	}
	defer closeClients(clients)
	get := func(ctx context.Context, url string, w int) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token.get())
		req.Header.Set("Accept", "application/fhir+json")
		return benchDo(clients[w], req, http.StatusOK)
	}
	// The baseline's answers, and a check of the page size.
	answers := make(map[string][]byte, len(patients))
	for _, p := range patients {
		body, err := get(ctx, query(srv.url, p), 0)
		if err != nil {
			return nil, fmt.Errorf("search for %s: %w", p, err)
		}
		if n := strings.Count(string(body), `"fullUrl"`); n != 100 {
			return nil, fmt.Errorf("search for %s returned %d entries on the first page, want 100", p, n)
		}
		answers[p] = body
	}
	next := make([]int, len(clients))
	call := func(base string) bench.Call {
		return func(ctx context.Context, w int) (int, error) {
			p := patients[(w+next[w]*len(clients))%len(patients)]
			next[w]++
			_, err := get(ctx, query(base, p), w)
			return 1, err
		}
	}
	fig := b.load(ctx, "search (Vitalgate)", "queries", len(clients), call(srv.url))
	baseURL, stop, err := srv.startBaseline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := answers[r.URL.Query().Get("patient")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
		_, _ = w.Write(body)
	}))
	if err != nil {
		return nil, err
	}
	base := b.load(ctx, "search baseline (bytes from memory)", "queries", len(clients), call(baseURL))
	stop()
	const bn = "same bytes from memory"
	scale := fmt.Sprintf("%d stored observations, %d clients", b.opt.observations, len(clients))
	rows := []bench.Row{{Scenario: "search", Metric: "queries/s, " + scale, Unit: "queries/s", Value: fig.CallRate(),
		Baseline: base.CallRate(), BaselineName: bn, Note: errorNote(fig)}}
	rows = append(rows, latencyRows("search", bn, fig, &base, bench.AtMost(10))...)
	if b.opt.observations < 1_000_000 {
		rows[2].Note = fmt.Sprintf("target stated at 1 000 000 observations; measured at %d", b.opt.observations)
	}
	return rows, nil
}

// loadSearchData inserts opt.observations sealed Observations straight into the store:
// patients get one observation a minute back from at (a week's worth each, the last patient
// fewer), cycling through a monitor's vital signs. It returns the patient ids that have a
// full 24 h.
func (b *benchRun) loadSearchData(ctx context.Context, n *node, at time.Time) ([]string, error) {
	const perDay = 1440
	total := b.opt.observations
	perPatient := 7 * perDay
	if total < perPatient {
		perPatient = total
	}
	var jobs []struct {
		patient string
		count   int
	}
	for left, i := total, 0; left > 0; i++ {
		c := min(left, perPatient)
		jobs = append(jobs, struct {
			patient string
			count   int
		}{fmt.Sprintf("bench-search-patient-%05d", i+1), c})
		left -= c
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		stored   int
		firstErr error
	)
	start := time.Now()
	work := make(chan int)
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				err := b.loadPatient(ctx, n, jobs[j].patient, jobs[j].count, at, func(k int) {
					mu.Lock()
					stored += k
					b.progress("   loading search data: %d/%d observations (%.0f/s)", stored, total, float64(stored)/time.Since(start).Seconds())
					mu.Unlock()
				})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for j := range jobs {
		if ctx.Err() != nil {
			break
		}
		work <- j
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	b.done("loaded %d observations for %d patients in %s (%.0f/s, sealed rows straight into the store)",
		stored, len(jobs), time.Since(start).Round(100*time.Millisecond), float64(stored)/time.Since(start).Seconds())
	var full []string
	for _, j := range jobs {
		if j.count >= perDay {
			full = append(full, j.patient)
		}
	}
	return full, nil
}

// loadPatient stores count observations of one patient, one a minute back from at, in
// batches of 1000. Each hour's readings come from the simulator's generator, decoded
// once; the minutes of the hour reuse them with their own time, id and meta, stored as
// ingest stores them (marshalled, sealed under the patient's key, blind-indexed).
func (b *benchRun) loadPatient(ctx context.Context, n *node, patient string, count int, at time.Time, stored func(int)) error {
	gen, err := simulator.NewGenerator(simulator.KindMonitor, rand.Reader)
	if err != nil {
		return err
	}
	const device = "bench-search-monitor"
	pidx := n.vault.PatientIndex(patient)
	var templates []*fhir.Observation
	var codes [][][]byte
	rows := make([]storedRow, 0, 1000)
	flush := func() error {
		rs, err := sealRows(ctx, n, rows)
		if err != nil {
			return err
		}
		if err := n.store.CreateResources(ctx, rs); err != nil {
			return err
		}
		stored(len(rs))
		rows = rows[:0]
		return nil
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for k := range count {
		if k%60 == 0 { // a new hour: fresh readings
			templates, codes = templates[:0], codes[:0]
			for _, r := range gen.Next() {
				doc, err := simulator.NewObservation(r, device, patient, at)
				if err != nil {
					return err
				}
				o, err := fhir.DecodeObservation(doc)
				if err != nil {
					return err
				}
				var cs [][]byte
				for _, c := range o.Codes() {
					cs = append(cs, n.vault.CodeIndex(c.System+"|"+c.Code), n.vault.CodeIndex(c.Code))
				}
				templates, codes = append(templates, o), append(codes, cs)
			}
		}
		o := *templates[k%len(templates)]
		eff := at.Add(-time.Duration(k) * time.Minute)
		o.EffectiveDateTime = eff.Format(time.RFC3339)
		id, err := ingest.NewID(now, rand.Reader)
		if err != nil {
			return err
		}
		o.SetMeta(id, "1", now)
		body, err := o.Marshal()
		if err != nil {
			return err
		}
		rows = append(rows, storedRow{id: id, body: body, patient: pidx, codes: codes[k%len(templates)], effective: eff})
		if len(rows) == cap(rows) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(rows) > 0 {
		return flush()
	}
	return nil
}

// benchToken is an access token, renewed when close to expiry.
type benchToken struct {
	mu      sync.Mutex
	token   string
	expires time.Time
	renew   func() (string, time.Duration, error)
}

// get returns a valid token (renewing it a minute before it expires; on failure the old
// one, which the server then refuses).
func (t *benchToken) get() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Until(t.expires) < time.Minute {
		if tok, ttl, err := t.renew(); err == nil {
			t.token, t.expires = tok, time.Now().Add(ttl)
		}
	}
	return t.token
}

// ehrToken registers an EHR client (role ehr-system) and returns its access token source
// (OAuth2 client_credentials over TLS, scope system/Observation.rs).
func (b *benchRun) ehrToken(ctx context.Context, srv *benchServer) (*benchToken, error) {
	secret, err := auth.NewSecret(rand.Reader)
	if err != nil {
		return nil, err
	}
	hash, err := auth.HashSecret(secret, auth.DefaultHashParams, rand.Reader)
	if err != nil {
		return nil, err
	}
	const id = "bench-ehr"
	if err := srv.n.store.CreateClient(ctx, vitalgate.Client{ID: id, Role: vitalgate.RoleEHRSystem, SecretHash: hash,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}); err != nil && vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		return nil, err
	}
	c := benchClient(srv.n.ca.Pool(), nil)
	t := &benchToken{renew: func() (string, time.Duration, error) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Observation.rs"}}
		req, err := http.NewRequest(http.MethodPost, srv.url+"/oauth2/token", strings.NewReader(form.Encode()))
		if err != nil {
			return "", 0, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		body, err := benchDo(c, req, http.StatusOK)
		if err != nil {
			return "", 0, fmt.Errorf("token: %w", err)
		}
		var out struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int    `json:"expires_in"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.AccessToken == "" {
			return "", 0, fmt.Errorf("token: unexpected answer %.200s", body)
		}
		return out.AccessToken, time.Duration(out.ExpiresIn) * time.Second, nil
	}}
	tok, ttl, err := t.renew()
	if err != nil {
		return nil, err
	}
	t.token, t.expires = tok, time.Now().Add(ttl)
	return t, nil
}

// benchHL7 measures IHE PCD-01 ORU^R01 messages from every device over MLLP with mutual
// TLS, each answered with an AA acknowledgement once durable, against an MLLP echo of the
// same frames over the same TLS settings.
func (b *benchRun) benchHL7(ctx context.Context) ([]bench.Row, error) {
	devs, err := b.enrolledDevices(ctx)
	if err != nil {
		return nil, err
	}
	const mllpPerAddr = mllp.DefaultMaxConnsPerIP / 2
	if maxDevs := mllp.DefaultMaxConns - mllpPerAddr; len(devs) > maxDevs {
		b.note(fmt.Sprintf("hl7: %d devices of %d, the MLLP listener's connection limit.", maxDevs, len(devs)))
		devs = devs[:maxDevs]
	}
	srv := b.srv
	if srv.mllpAddr == "" {
		return nil, errors.New("the server was started without MLLP")
	}
	frames := make([][][]byte, len(devs))
	obsPerMsg := 0
	for i, d := range devs {
		for k := range 8 {
			readings := d.gen.Next()
			obsPerMsg = simulator.PCD01Count(readings)
			msg, err := simulator.NewPCD01(readings, d.id, d.patient, time.Now().Add(-time.Duration(8-k)*time.Second), fmt.Sprintf("B%d-%d", i, k))
			if err != nil {
				return nil, err
			}
			frames[i] = append(frames[i], msg)
		}
	}
	exchange := func(addr string, wantAA bool) (bench.Call, func()) {
		conns := make([]net.Conn, len(devs))
		readers := make([]*mllp.Reader, len(devs))
		next := make([]int, len(devs))
		closeAll := func() {
			for _, c := range conns {
				if c != nil {
					_ = c.Close()
				}
			}
		}
		return func(ctx context.Context, w int) (int, error) {
			if conns[w] == nil {
				// The MLLP listener keeps its production limit of connections per
				// address (mllp.DefaultMaxConnsPerIP): devices come from distinct
				// loopback addresses, mllpPerAddr of them from each, as from a ward.
				local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+w/mllpPerAddr))} // #nosec G115 -- at most a few hundred devices: 2+w/8 < 255
				d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second, LocalAddr: local}, Config: &tls.Config{
					MinVersion: tls.VersionTLS13, RootCAs: srv.n.ca.Pool(), Certificates: []tls.Certificate{*devs[w].cert}, ServerName: "127.0.0.1"}}
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					return 0, err
				}
				conns[w], readers[w] = c, mllp.NewReader(c, 1<<20)
			}
			c := conns[w]
			fail := func(err error) (int, error) {
				_ = c.Close()
				conns[w] = nil
				return 0, err
			}
			if dl, ok := ctx.Deadline(); ok {
				_ = c.SetDeadline(dl)
			} else {
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			}
			stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
			defer stop()
			if err := mllp.WriteFrame(c, frames[w][next[w]%len(frames[w])]); err != nil {
				return fail(err)
			}
			next[w]++
			ack, err := readers[w].ReadFrame()
			if err != nil {
				return fail(err)
			}
			if wantAA && !bytes.Contains(ack, []byte("MSA|AA|")) {
				return 0, fmt.Errorf("not accepted: %.300q", ack)
			}
			return 1, nil
		}, closeAll
	}
	call, closeAll := exchange(srv.mllpAddr, true)
	fig := b.load(ctx, "hl7 (Vitalgate MLLP/TLS)", "msgs", len(devs), call)
	closeAll()
	echoAddr, stopEcho, err := srv.startEcho()
	if err != nil {
		return nil, err
	}
	call, closeAll = exchange(echoAddr, false)
	base := b.load(ctx, "hl7 baseline (MLLP echo)", "msgs", len(devs), call)
	closeAll()
	stopEcho()
	const bn = "MLLP echo, same TLS"
	rows := []bench.Row{{Scenario: "hl7", Metric: fmt.Sprintf("PCD-01 messages/s answered AA, %d devices, %d obs each", len(devs), obsPerMsg),
		Unit: "msgs/s", Value: fig.CallRate(), Baseline: base.CallRate(), BaselineName: bn, Note: errorNote(fig)}}
	return append(rows, latencyRows("hl7", bn, fig, &base, nil)...), nil
}

// startEcho starts an MLLP echo server over the MLLP listener's TLS settings (client
// certificates required) and returns its address and a stop function.
func (s *benchServer) startEcho() (string, func(), error) {
	tc := s.baselineTLS()
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	tc.NextProtos = nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tl := tls.NewListener(ln, tc)
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				rd := mllp.NewReader(c, 1<<20)
				for {
					frame, err := rd.ReadFrame()
					if err != nil {
						return
					}
					if err := mllp.WriteFrame(c, frame); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() {
		_ = ln.Close()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}, nil
}

// benchConnections measures the server's memory per idle connected device: --connections
// devices (registered with certificates issued by the CA, as EST would issue them) each
// open one mutual TLS connection, make one request (GET /fhir/metadata) and keep the
// connection idle. The clients run in a child process, so that this process's heap, stacks
// and resident set grow by the server's share only.
func (b *benchRun) benchConnections(ctx context.Context) ([]bench.Row, error) {
	srv, err := b.server(ctx)
	if err != nil {
		return nil, err
	}
	count := b.opt.connections
	if limit := fileLimit(); uint64(count)+512 > limit { // #nosec G115 -- count is a positive flag value
		count = int(limit) - 512 // #nosec G115 -- limit < count+512, a small int
		b.note(fmt.Sprintf("connections: RLIMIT_NOFILE is %d, so %d connections were measured instead of %d.", limit, count, b.opt.connections))
		if count < 1 {
			return nil, fmt.Errorf("RLIMIT_NOFILE %d is too low", limit)
		}
	}
	dir := filepath.Join(b.tmp, "idle")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	if err := b.provisionIdleDevices(ctx, srv.n, dir, count); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	before := bench.ReadProcessMemory()
	cmd := exec.CommandContext(ctx, exe, "bench", "--idle-clients", dir, "--idle-addr", strings.TrimPrefix(srv.url, "https://"), "--connections", fmt.Sprint(count)) // #nosec G204 -- this binary
	var childErr bytes.Buffer                                                                                                                                        // the child's own: written only by exec's copying goroutine
	cmd.Stderr = &childErr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil && childErr.Len() > 0 {
			fmt.Fprintf(b.m.Stderr, "\nidle clients: %s\n", strings.TrimSpace(childErr.String()))
		}
	}()
	sc := bufio.NewScanner(stdout)
	connected, failed := 0, 0
	var firstErr string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "connected" {
			connected, _ = strconv.Atoi(f[1])
			b.progress("   opening idle mutual TLS connections: %d/%d (%.0f/s)", connected, count, float64(connected)/time.Since(start).Seconds())
		}
		if len(f) >= 3 && f[0] == "ready" {
			connected, _ = strconv.Atoi(f[1])
			failed, _ = strconv.Atoi(f[2])
			firstErr = strings.Join(f[3:], " ")
			break
		}
	}
	connectTime := time.Since(start)
	if connected == 0 {
		return nil, fmt.Errorf("no idle connection could be opened: %s", firstErr)
	}
	b.done("%d idle connections open in %s (%.0f handshakes+requests/s), %d failed %s", connected, connectTime.Round(100*time.Millisecond),
		float64(connected)/connectTime.Seconds(), failed, firstErr)
	b.progress("   letting the connections settle ...")
	time.Sleep(3 * time.Second)
	after := bench.ReadProcessMemory()
	b.clearProgress()
	per := func(a, z uint64) float64 { return (float64(z) - float64(a)) / float64(connected) / 1024 }
	heap := per(before.HeapAlloc+before.StackInuse, after.HeapAlloc+after.StackInuse)
	rss := per(before.RSS, after.RSS)
	b.done("heap+stacks %.1f KiB and RSS %.1f KiB per connection; %.2f goroutines per connection", heap, rss,
		float64(after.Goroutines-before.Goroutines)/float64(connected))
	scale := fmt.Sprintf("%d idle devices", connected)
	note := ""
	if failed > 0 {
		note = fmt.Sprintf("%d connections failed: %s", failed, firstErr)
	}
	return []bench.Row{
		{Scenario: "connections", Metric: "server heap+stacks per idle connection, " + scale, Unit: "KiB", Value: heap, Lower: true, Target: bench.AtMost(50), Note: note},
		{Scenario: "connections", Metric: "server RSS per idle connection, " + scale, Unit: "KiB", Value: rss, Lower: true, Target: bench.AtMost(50)},
		{Scenario: "connections", Metric: "server goroutines per idle connection", Unit: "goroutines", Value: float64(after.Goroutines-before.Goroutines) / float64(connected), Lower: true},
		{Scenario: "connections", Metric: "connection setup (mutual TLS, registry check, one request)", Unit: "conns/s", Value: float64(connected) / connectTime.Seconds()},
	}, nil
}

// provisionIdleDevices registers count devices with a certificate each, issued by the CA
// from a CSR exactly as EST issues it, and writes the certificates and keys (PEM) and the
// CA certificate to dir for the client process.
func (b *benchRun) provisionIdleDevices(ctx context.Context, n *node, dir string, count int) error {
	type cred struct{ cert, key []byte }
	creds := make([]cred, count)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		done     int
		firstErr error
	)
	start := time.Now()
	work := make(chan int)
	for range 2 * runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, err := b.provisionIdleDevice(ctx, n, fmt.Sprintf("bench-idle-%05d", i+1))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				creds[i] = c
				done++
				b.progress("   provisioning idle devices (key, CSR, certificate, registry): %d/%d (%.0f/s)", done, count, float64(done)/time.Since(start).Seconds())
				mu.Unlock()
			}
		}()
	}
	for i := range count {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	var all []byte
	for _, c := range creds {
		all = append(append(all, c.cert...), c.key...)
	}
	if err := writeFile(filepath.Join(dir, "devices.pem"), all, 0o600); err != nil {
		return err
	}
	caPEM, _, err := n.ca.MarshalPEM()
	if err != nil {
		return err
	}
	b.done("%d idle devices provisioned in %s", count, time.Since(start).Round(100*time.Millisecond))
	return writeFile(filepath.Join(dir, "ca.pem"), caPEM, 0o600)
}

// provisionIdleDevice registers one device and its certificate and returns the PEM
// certificate and key.
func (b *benchRun) provisionIdleDevice(ctx context.Context, n *node, id string) (c struct{ cert, key []byte }, err error) {
	key, err := pki.GenerateDeviceKey(rand.Reader)
	if err != nil {
		return c, err
	}
	der, err := pki.NewCSR(id, key, rand.Reader)
	if err != nil {
		return c, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return c, err
	}
	now := time.Now().UTC()
	cert, err := n.ca.IssueDevice(csr, id, now, 0, rand.Reader)
	if err != nil {
		return c, err
	}
	now = now.Truncate(time.Microsecond)
	if err := n.store.CreateDevice(ctx, vitalgate.Device{ID: id, Model: "Vitalgate bench (idle)", Status: vitalgate.DeviceActive,
		PatientIndex: n.vault.PatientIndex("bench-idle-patient"), CreatedAt: now, UpdatedAt: now}); err != nil {
		return c, err
	}
	if err := n.store.AddCertificate(ctx, vitalgate.Certificate{Serial: pki.SerialHex(cert), DeviceID: id,
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IssuedAt: now}); err != nil {
		return c, err
	}
	c.cert = pki.MarshalCertPEM(cert)
	c.key, err = pki.MarshalKeyPEM(key)
	return c, err
}

// benchIdleClients is the client process of the connections scenario: it opens one mutual
// TLS connection per device found in dir (as the simulator's HTTP client does, HTTP/2 when
// offered), makes one request on each, reports "connected N" lines and a final
// "ready N FAILED [first error]" line on standard output, and then keeps the connections
// idle until standard input closes.
func (m *Main) benchIdleClients(ctx context.Context, dir, addr string, count int) error {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem")) // #nosec G304 -- the parent's temp dir
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no CA certificate")
	}
	data, err := os.ReadFile(filepath.Join(dir, "devices.pem")) // #nosec G304 -- the parent's temp dir
	if err != nil {
		return err
	}
	var certs []tls.Certificate
	for len(data) > 0 {
		var certBlock, keyBlock *pem.Block
		certBlock, data = pem.Decode(data)
		if certBlock == nil {
			break
		}
		keyBlock, data = pem.Decode(data)
		if keyBlock == nil {
			return errors.New("devices.pem: a certificate without its key")
		}
		c, err := tls.X509KeyPair(pem.EncodeToMemory(certBlock), pem.EncodeToMemory(keyBlock))
		if err != nil {
			return err
		}
		certs = append(certs, c)
	}
	if count > len(certs) {
		count = len(certs)
	}
	clients := make([]*http.Client, count)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		connected int
		failed    int
		firstErr  string
	)
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c := benchClient(pool, &certs[i])
				c.Transport.(*http.Transport).IdleConnTimeout = 0 // kept until the process ends
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/fhir/metadata", nil)
				if err == nil {
					_, err = benchDo(c, req, http.StatusOK)
				}
				mu.Lock()
				if err != nil {
					failed++
					if firstErr == "" {
						firstErr = err.Error()
					}
				} else {
					connected++
					clients[i] = c
					if connected%100 == 0 {
						fmt.Fprintf(m.Stdout, "connected %d\n", connected)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range count {
		work <- i
	}
	close(work)
	wg.Wait()
	fmt.Fprintf(m.Stdout, "ready %d %d %s\n", connected, failed, strings.ReplaceAll(firstErr, "\n", " "))
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	closeClients(clients[:0])
	return nil
}

// benchAudit is the audit log of the audit scenarios: the real store (SQLite, production
// options) and audit.Log on a data dir of their own, so that verification covers exactly
// the entries the scenarios wrote.
type benchAudit struct {
	store *sqlite.DB
	log   *audit.Log
	next  atomic.Int64 // entries made so far, to vary them
}

// auditLog opens the audit scenarios' log on first use.
func (b *benchRun) auditLog(ctx context.Context) (*benchAudit, error) {
	if b.audit != nil {
		return b.audit, nil
	}
	dir := filepath.Join(b.tmp, "audit")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, dbFile), sqlite.Options{})
	if err != nil {
		return nil, err
	}
	key, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	const origin = "vitalgate/bench"
	signer, err := audit.NewSigner(origin, key)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	b.audit = &benchAudit{store: store, log: audit.NewLog(store, signer, origin, "bench-node", nil)}
	return b.audit, nil
}

func (a *benchAudit) close() { _ = a.store.Close() }

// entry returns a realistic entry, as ingest writes for a created Observation.
func (a *benchAudit) entry(ctx context.Context) []byte {
	i := a.next.Add(1)
	var rnd [24]byte
	_, _ = rand.Read(rnd[:])
	sum := sha256.Sum256(fmt.Appendf(nil, "patient-%d", i%512))
	return a.log.Encode(ctx, audit.Entry{Action: audit.ActionCreate, Type: "rest", Subtype: "create",
		AgentType: audit.AgentDevice, AgentID: fmt.Sprintf("bench-device-%04d", i%512), AgentRole: "device",
		SourceIP: "127.0.0.1", PatientIndex: hex.EncodeToString(sum[:]), RequestID: hex.EncodeToString(rnd[:8]),
		Resources: []string{"Observation/" + hex.EncodeToString(rnd[8:])}})
}

// benchAuditAppend measures entries appended durably, one per call from --devices
// goroutines, with the checkpointer signing every 2 s as serve runs it.
func (b *benchRun) benchAuditAppend(ctx context.Context) ([]bench.Row, error) {
	a, err := b.auditLog(ctx)
	if err != nil {
		return nil, err
	}
	cpCtx, stopCheckpoints := context.WithCancel(context.Background())
	cpDone := make(chan struct{})
	var cpErr atomic.Pointer[string]
	go func() {
		defer close(cpDone)
		a.log.Run(cpCtx, 2*time.Second, func(err error) { msg := err.Error(); cpErr.CompareAndSwap(nil, &msg) })
	}()
	fig := b.load(ctx, "audit-append", "entries", b.opt.devices, func(ctx context.Context, w int) (int, error) {
		_, err := a.store.AppendAudit(ctx, a.entry(ctx))
		return 1, err
	})
	stopCheckpoints()
	<-cpDone
	note := errorNote(fig)
	if p := cpErr.Load(); p != nil {
		note = strings.TrimPrefix(note+"; checkpoint failed: "+*p, "; ")
	}
	return []bench.Row{
		{Scenario: "audit-append", Metric: fmt.Sprintf("entries/s durable, %d writers, checkpoints every 2 s", b.opt.devices), Unit: "entries/s",
			Value: fig.UnitRate(), Target: bench.AtLeast(20000), Note: note},
		{Scenario: "audit-append", Metric: "p99 append latency", Unit: "ms", Value: ms(fig.P99), Lower: true},
	}, nil
}

// benchAuditVerify fills the audit log to --audit-entries entries (bulk appends, a signed
// checkpoint every 100 000 and at the end) and measures audit.Verify over the store
// against SHA-256 over the same entry bytes, read from the store beforehand.
func (b *benchRun) benchAuditVerify(ctx context.Context) ([]bench.Row, error) {
	a, err := b.auditLog(ctx)
	if err != nil {
		return nil, err
	}
	target := uint64(b.opt.auditEntries) // #nosec G115 -- a positive flag value
	size, err := a.store.AuditSize(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	lastCheckpoint := size
	for size < target {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		batch := make([][]byte, min(1000, target-size))
		for i := range batch {
			batch[i] = a.entry(ctx)
		}
		if size, err = a.store.AppendAudit(ctx, batch...); err != nil {
			return nil, err
		}
		if size-lastCheckpoint >= 100_000 {
			if _, err := a.log.Checkpoint(ctx); err != nil {
				return nil, err
			}
			lastCheckpoint = size
		}
		b.progress("   filling the audit log: %d/%d entries", size, target)
	}
	if _, err := a.log.Checkpoint(ctx); err != nil {
		return nil, err
	}
	if size, err = a.store.AuditSize(ctx); err != nil {
		return nil, err
	}
	b.done("audit log of %d entries ready in %s", size, time.Since(start).Round(100*time.Millisecond))
	stored, err := a.store.AuditCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	b.progress("   audit.Verify over the store ...")
	vstart := time.Now()
	rep, err := audit.Verify(ctx, audit.StoreLog{Store: a.store}, audit.SignedCheckpoints(stored), a.log.Verifier(), func(done, total uint64) {
		b.progress("   audit.Verify over the store: %d/%d entries", done, total)
	})
	vtime := time.Since(vstart)
	if err != nil {
		return nil, fmt.Errorf("audit log does not verify: %w", err)
	}
	b.done("verified %d entries, %.1f MB, %d checkpoints in %s", rep.Entries, float64(rep.Bytes)/1e6, rep.Checkpoints, vtime.Round(time.Millisecond))
	// Baseline: SHA-256 over the same bytes, read into memory in chunks (not timed).
	var hashTime time.Duration
	var hashed, hashedBytes uint64
	for from := uint64(0); from < rep.Entries; from += 50_000 {
		b.progress("   baseline SHA-256 over the same bytes: %d/%d entries", from, rep.Entries)
		var chunk [][]byte
		if err := a.store.AuditEntries(ctx, from, min(from+50_000, rep.Entries), func(r vitalgate.AuditRecord) error {
			chunk = append(chunk, bytes.Clone(r.Data))
			return nil
		}); err != nil {
			return nil, err
		}
		t := time.Now()
		for _, e := range chunk {
			_ = sha256.Sum256(e)
			hashedBytes += uint64(len(e))
		}
		hashTime += time.Since(t)
		hashed += uint64(len(chunk))
	}
	b.done("baseline: SHA-256 over the same %d entries in %s", hashed, hashTime.Round(time.Millisecond))
	if hashed != rep.Entries || hashedBytes != rep.Bytes {
		return nil, fmt.Errorf("baseline hashed %d entries (%d bytes), verification %d (%d bytes)", hashed, hashedBytes, rep.Entries, rep.Bytes)
	}
	vs, hs := vtime.Seconds(), hashTime.Seconds()
	const bn = "SHA-256 of the same bytes"
	return []bench.Row{
		{Scenario: "audit-verify", Metric: fmt.Sprintf("entries/s verified, %d entries, %d checkpoints", rep.Entries, rep.Checkpoints), Unit: "entries/s",
			Value: float64(rep.Entries) / vs, Baseline: float64(hashed) / hs, BaselineName: bn},
		{Scenario: "audit-verify", Metric: fmt.Sprintf("MB/s verified (%.0f bytes/entry)", float64(rep.Bytes)/float64(rep.Entries)), Unit: "MB/s",
			Value: float64(rep.Bytes) / 1e6 / vs, Baseline: float64(hashedBytes) / 1e6 / hs, BaselineName: bn, Target: bench.RatioAtLeast(0.5)},
	}, nil
}
