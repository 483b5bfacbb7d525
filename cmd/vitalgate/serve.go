package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/ingest"
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
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
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
	return m.serve(ctx, n, cfg, log)
}

// serve runs the HTTPS server on an opened data dir until ctx is cancelled.
func (m *Main) serve(ctx context.Context, n *node, cfg httpapi.Config, log *slog.Logger) error {
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
	if cfg.PublicURL == "" {
		cfg.PublicURL = "https://" + addr
	}
	tokens, err := auth.NewTokens(tokenKey, cfg.PublicURL, strings.TrimSuffix(cfg.PublicURL, "/")+"/fhir", auth.MaxTokenTTL, m.Now)
	if err != nil {
		_ = ln.Close()
		return err
	}
	ing := &ingest.Service{Devices: n.store, Resources: n.store, Vault: n.vault, Limits: lim, Now: m.Now}
	srv, err := httpapi.New(httpapi.Options{
		Config: cfg, CA: n.ca, Registry: n.store, Ingest: ing, Ready: n.store, Logger: log, Now: m.Now,
		Tokens: tokens, Access: &access.Service{Store: n.store, Vault: n.vault, Now: m.Now},
		Clients: n.store, Admin: n.store,
	})
	if err != nil {
		_ = ln.Close()
		return err
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
