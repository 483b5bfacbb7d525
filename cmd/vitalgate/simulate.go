package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/simulator"
)

func (m *Main) runSimulate(ctx context.Context, args []string) error {
	fs := m.flags("simulate", "simulate --server URL --ca FILE --device ID:PATIENT:SECRET[:KIND]... [--interval 1s] [--duration 0]")
	server := fs.String("server", "", "server base URL, e.g. https://127.0.0.1:8443")
	caFile := fs.String("ca", "", "PEM file with the server's CA certificate (ca.crt of the data dir), obtained out of band")
	var devs stringList
	fs.Var(&devs, "device", "a device as ID:PATIENT:ENROLL_SECRET[:KIND] (repeatable); KIND is one of "+strings.Join(simulator.Kinds(), ", ")+", or "+simulator.KindBloodGas+" (HL7 lab results, needs --hl7)")
	interval := fs.Duration("interval", time.Second, "time between two rounds of a device's observations")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	batch := fs.Int("batch", 0, "send Bundles of this many observations instead of single ones")
	hl7 := fs.String("hl7", "", "send HL7 v2 PCD-01 over MLLP/TLS to this address (host:port of serve --mllp-addr) instead of FHIR")
	certDir := fs.String("certs", defaultCertDir(), "keep each device's key and certificate here, so that a rerun reuses them instead of spending the one-time secret again (empty: memory only)")
	update := fs.Bool("update", false, "also act as devices that take signed updates: poll /updates/offer, verify and download the offered release through TUF, install it and report to /updates/report (needs --model and --tuf-root)")
	upModel := fs.String("model", "", "with --update: the devices' model id")
	upRoot := fs.String("tuf-root", "", "with --update: the root.json `FILE` the devices are provisioned with, obtained out of band")
	upDir := fs.String("update-dir", defaultUpdateDir(), "with --update: `DIR` of each device's update state (TUF metadata, downloads, installed version)")
	upPoll := fs.Duration("poll", simulator.DefaultPollInterval, "with --update: time between two offer requests of a device")
	upFail := fs.String("update-fail", "", "with --update: make every update fail (`MODE`): install (fails before installing), health (installs, then fails its health check) or rollback (installs, fails its health check, restores the previous version)")
	upSkew := fs.Duration("clock-skew", 0, "with --update: how far a device clock may run ahead of the server's before metadata counts as expired")
	scenario := fs.String("scenario", "", "replay this labelled scenario `FILE` (JSON, docs/detection.md) through the detection engine on simulated time, instead of sending anything")
	rulesFile := fs.String("detect-rules", "", "with --scenario: the detection rules `FILE` (default: the shipped rules)")
	asJSON := fs.Bool("json", false, "with --scenario: the result as JSON")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *scenario != "" {
		return m.simulateScenario(*scenario, *rulesFile, *asJSON)
	}
	if *server == "" || *caFile == "" || len(devs) == 0 {
		fmt.Fprintln(m.Stderr, "--server, --ca and at least one --device are required")
		fs.Usage()
		return errUsage
	}
	cfg := simulator.Config{ServerURL: *server, CAFile: *caFile, Interval: *interval, BatchSize: *batch, HL7Addr: *hl7, CertDir: *certDir}
	for _, d := range devs {
		parts := strings.Split(d, ":")
		if len(parts) < 3 || len(parts) > 4 {
			return fmt.Errorf("--device %q: use ID:PATIENT:ENROLL_SECRET[:KIND]", strings.SplitN(d, ":", 2)[0])
		}
		dc := simulator.DeviceConfig{ID: parts[0], PatientID: parts[1], EnrollSecret: parts[2], Kind: "monitor"}
		if len(parts) == 4 {
			dc.Kind = parts[3]
		}
		cfg.Devices = append(cfg.Devices, dc)
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	var last simulator.Stats
	status := func(st simulator.Stats) {
		last = st
		fmt.Fprintf(m.Stderr, "\r%s   ", st.String())
	}
	var err error
	if *update {
		up := simulator.UpdateConfig{Model: *upModel, TrustedRootFile: *upRoot, Dir: *upDir, PollInterval: *upPoll, Fail: *upFail, ClockSkew: *upSkew}
		err = simulator.RunWithUpdates(ctx, cfg, up, status, func(e simulator.UpdateEvent) { fmt.Fprintf(m.Stderr, "\n%s\n", e) })
	} else {
		err = simulator.Run(ctx, cfg, status)
	}
	fmt.Fprintln(m.Stderr)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	fmt.Fprintf(m.Stdout, "%s\n", last.String())
	return nil
}

// defaultUpdateDir is where simulate --update keeps the devices' update state by default.
func defaultUpdateDir() string {
	if dir := defaultCertDir(); dir != "" {
		return filepath.Join(dir, "updates")
	}
	return ""
}

// defaultCertDir is where simulate keeps device certificates by default: the user's cache
// directory.
func defaultCertDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "vitalgate", "simulator")
}
