package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/metrics"
	"github.com/vitalgate/vitalgate/mllp"
)

func (m *Main) runServe(ctx context.Context, args []string) error {
	cfg := httpapi.DefaultConfig()
	fs := m.flags("serve", "serve --data DIR [--addr 127.0.0.1:8443] [flags]")
	dir := fs.String("data", "", "data directory created by `vitalgate init`")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "HTTPS listen address")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "base URL clients use to reach this server (token issuer and audience); default https://ADDR")
	fs.BoolVar(&cfg.AllowTLS12, "tls12", cfg.AllowTLS12, "also offer TLS 1.2 (ECDHE+AEAD suites only); default is TLS 1.3 only")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body", cfg.MaxBodyBytes, "request body limit in bytes")
	fs.IntVar(&cfg.MaxBundleEntries, "max-bundle-entries", cfg.MaxBundleEntries, "Bundle entries limit")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "grace for in-flight requests on shutdown")
	fs.Float64Var(&cfg.RatePerCaller, "rate-per-caller", cfg.RatePerCaller, "sustained requests per second of one device or client")
	fs.IntVar(&cfg.BurstPerCaller, "burst-per-caller", cfg.BurstPerCaller, "burst above the per-caller rate")
	fs.Float64Var(&cfg.RatePerIP, "rate-per-ip", cfg.RatePerIP, "requests per second from one address before authentication")
	fs.IntVar(&cfg.BurstPerIP, "burst-per-ip", cfg.BurstPerIP, "burst above the per-address rate")
	fs.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "connections open at once")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", cfg.MaxConnsPerIP, "connections open at once from one address")
	fs.IntVar(&cfg.MaxInFlightPerCaller, "max-inflight-per-caller", cfg.MaxInFlightPerCaller, "concurrent requests of one device or client")
	fs.IntVar(&cfg.MaxInFlightWrites, "max-inflight-writes", cfg.MaxInFlightWrites, "writes in progress before new ones get 503 (load shedding)")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "time for the TLS handshake and request headers")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "keep-alive idle time")
	fs.DurationVar(&cfg.EmergencyTTL, "emergency-ttl", cfg.EmergencyTTL, "life of an emergency-access (break glass) token, 10s to 5m")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	mllpAddr := fs.String("mllp-addr", "", "also accept HL7 v2 (IHE PCD-01) over MLLP with TLS on this address, e.g. 127.0.0.1:2575")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics on this loopback address, e.g. 127.0.0.1:9464")
	syslogAddr := fs.String("syslog-addr", "", "forward the audit log to this syslog collector over TLS (RFC 5425), e.g. siem.example.org:6514")
	syslogCA := fs.String("syslog-ca", "", "PEM file of the CA that signed the syslog collector's certificate (default: the system roots)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: lvl}))
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	return m.serve(ctx, n, cfg, serveOptions{mllpAddr: *mllpAddr, metricsAddr: *metricsAddr, syslogAddr: *syslogAddr, syslogCA: *syslogCA}, log)
}

// serveOptions are the optional listeners and forwarders of serve.
type serveOptions struct {
	mllpAddr    string
	metricsAddr string
	syslogAddr  string
	syslogCA    string
}

// serve runs the HTTPS server on an opened data dir until ctx is cancelled.
func (m *Main) serve(ctx context.Context, n *node, cfg httpapi.Config, opt serveOptions, log *slog.Logger) error {
	cert, err := n.serverCertificate()
	if err != nil {
		return err
	}
	tokenKey, err := n.tokenKey()
	if err != nil {
		return err
	}
	lim := fhir.DefaultLimits()
	lim.MaxEntries = cfg.MaxBundleEntries
	lim.MaxDepth = cfg.MaxJSONDepth
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	addr := ln.Addr().String()
	publicURL := cfg.PublicURL // as given: client assertions must name it (or the init host names)
	if cfg.PublicURL == "" {
		cfg.PublicURL = "https://" + addr
	}
	tokens, err := auth.NewTokens(tokenKey, cfg.PublicURL, strings.TrimSuffix(cfg.PublicURL, "/")+"/fhir", auth.MaxTokenTTL, m.Now)
	if err != nil {
		_ = ln.Close()
		return err
	}
	host, _ := os.Hostname()
	alog, err := m.auditLog(n, host+"/"+addr)
	if err != nil {
		_ = ln.Close()
		return err
	}
	authn, authFailures, err := m.tokenService(n, cert, cfg, publicURL, addr, tokens, alog, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	ing := &ingest.Service{Devices: n.store, Resources: n.store, Vault: n.vault, Limits: lim, Now: m.Now, Audit: alog, Finder: n.store}
	met := metrics.New(func() float64 {
		mctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ds, err := n.store.Devices(mctx)
		if err != nil {
			return -1
		}
		enrolled := 0
		for _, d := range ds {
			if d.Status == vitalgate.DeviceActive && d.EnrollSecretHash == "" {
				enrolled++
			}
		}
		return float64(enrolled)
	})
	srv, err := httpapi.New(httpapi.Options{
		Config: cfg, CA: n.ca, Registry: n.store, Ingest: ing, Ready: n.store, Logger: log, Now: m.Now,
		Tokens: tokens, Access: &access.Service{Store: n.store, Vault: n.vault, Now: m.Now, Audit: alog},
		Auth: authn, Admin: n.store, Metrics: met, Audit: alog, AuditDB: n.store,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	if err := alog.Append(ctx, audit.Entry{Action: audit.ActionExecute, Type: "system", Subtype: "start",
		AgentType: audit.AgentSystem, AgentID: "vitalgate", OutcomeDesc: "server started on " + addr}); err != nil {
		_ = ln.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	// The checkpointer signs while the server runs and once more after it has stopped (the
	// deferred calls run in reverse: stop entry, then final checkpoint).
	cpCtx, stopCheckpoints := context.WithCancel(context.Background())
	cpDone := make(chan struct{})
	go func() {
		defer close(cpDone)
		alog.Run(cpCtx, 2*time.Second, func(err error) { log.Error("audit checkpoint failed", "error", err.Error()) })
	}()
	defer func() { stopCheckpoints(); <-cpDone }()
	defer func() {
		_ = alog.Append(context.Background(), audit.Entry{Action: audit.ActionExecute, Type: "system", Subtype: "stop",
			AgentType: audit.AgentSystem, AgentID: "vitalgate", OutcomeDesc: "server stopped"})
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	// Heartbeats: deployment-wide limits are shared out between the nodes on this store.
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.heartbeat(ctx, n, host+"/"+addr, srv, log, func(nodes int) {
			authFailures.SetMax(max(1, (cfg.AuthFailuresPerMinute+nodes-1)/nodes))
		})
	}()
	if opt.metricsAddr != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := met.Serve(ctx, opt.metricsAddr); err != nil {
				log.Error("metrics listener failed", "error", err.Error())
			}
		}()
	}
	if opt.syslogAddr != "" {
		fwd, err := m.syslogForwarder(n, opt, host, log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); fwd.Run(ctx) }()
	}
	if opt.mllpAddr != "" {
		stop, err := m.serveMLLP(ctx, n, srv.TLSConfig(cert), ing, met, opt.mllpAddr, guard.NewLimiter(cfg.RatePerCaller, cfg.BurstPerCaller, nil), log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stop()
	}
	log.Info("vitalgate serving", "addr", "https://"+addr, "data", n.dir)
	if m.Ready != nil {
		m.Ready(addr)
	}
	start := time.Now()
	err = srv.Serve(ctx, ln, cert)
	log.Info("vitalgate stopped", "uptime", time.Since(start).Round(time.Second).String())
	return err
}

// serveMLLP starts the MLLP/TLS listener: device certificates required and checked against
// the registry at the handshake, exactly as for HTTPS. The returned function stops it
// gracefully.
func (m *Main) serveMLLP(ctx context.Context, n *node, base *tls.Config, ing *ingest.Service, met *metrics.Metrics, addr string, lim *guard.Limiter, log *slog.Logger) (func(), error) {
	tc := base.Clone()
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	tc.NextProtos = nil
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (MLLP): %w", addr, err)
	}
	intake := &mllp.Intake{
		Ingest: ing, Log: log, Now: m.Now, Limits: hl7v2.Limits{},
		ResolvePatient: func(ctx context.Context, key string) (string, error) {
			return resolvePatient(ctx, n, key)
		},
		Result: func(ack string) { met.MLLPMessages.WithLabelValues(ack).Inc() },
		Limit:  lim,
	}
	srv, err := mllp.NewServer(mllp.Config{Logger: log, Now: m.Now}, intake)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(tls.NewListener(ln, tc)); err != nil && !errors.Is(err, mllp.ErrServerClosed) {
			log.Error("MLLP listener failed", "error", err.Error())
		}
	}()
	log.Info("vitalgate MLLP/TLS serving", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}

// syslogForwarder forwards the audit log to a collector over TLS; its position is kept in
// DIR/syslog.cursor, so a collector outage loses nothing.
func (m *Main) syslogForwarder(n *node, opt serveOptions, host string, log *slog.Logger) (*audit.Forwarder, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if opt.syslogCA != "" {
		pem, err := os.ReadFile(opt.syslogCA) // #nosec G304 -- the operator names the file
		if err != nil {
			return nil, fmt.Errorf("--syslog-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--syslog-ca %s holds no PEM certificate", opt.syslogCA)
		}
	}
	addr := opt.syslogAddr
	return &audit.Forwarder{
		Store: n.store, CursorFile: filepath.Join(n.dir, "syslog.cursor"), Hostname: host, App: "vitalgate",
		Dial: func(ctx context.Context) (net.Conn, error) {
			d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tc}
			return d.DialContext(ctx, "tcp", addr)
		},
		OnError: func(err error) { log.Warn("audit forwarding to syslog failed; will retry", "error", err.Error()) },
	}, nil
}

// heartbeat records this node in the store every 2 s and shares the limits out between the
// nodes seen in the last 10 s.
func (m *Main) heartbeat(ctx context.Context, n *node, name string, srv *httpapi.Server, log *slog.Logger, share ...func(nodes int)) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	last := 1
	for {
		nodes, err := n.store.Heartbeat(ctx, name, m.Now(), 10*time.Second)
		if err == nil && nodes != last {
			log.Info("nodes on this store changed; limits shared out", "nodes", nodes)
			srv.SetClusterSize(nodes)
			for _, f := range share {
				f(nodes)
			}
			last = nodes
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
