package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/bench"
	vgnode "github.com/vitalgate/vitalgate/node"
)

// runBench runs `vitalgate bench` (package bench runs the scenarios): it starts the real
// server on a temporary data dir on loopback, drives it with real clients over mutual TLS,
// measures each scenario and its same-run baseline, prints a table and writes CSV, JSON,
// Markdown and an SVG chart of the ratios to --out.
func (m *Main) runBench(ctx context.Context, args []string) error {
	if m.Now == nil { // the tests call runBench without Run
		m.Now = time.Now
	}
	fs := m.flags("bench", "bench [--scenario NAME|all] [--duration 20s] [--devices 64] [--out DIR] [flags]")
	scenario := fs.String("scenario", "all", "scenario to run, a comma-separated list, or all: "+strings.Join(bench.Scenarios, ", "))
	opt := bench.Options{Stdout: m.Stdout, Stderr: m.Stderr, Env: m.env()}
	fs.DurationVar(&opt.Duration, "duration", 20*time.Second, "measured time of each load run (a scenario with a baseline runs twice)")
	fs.DurationVar(&opt.Warmup, "warmup", 2*time.Second, "unmeasured time before each load run (connections, caches)")
	fs.IntVar(&opt.Devices, "devices", 64, "concurrent devices (ingest, ingest-batch, hl7, hl7-lab, update) and audit writers (audit-append)")
	fs.IntVar(&opt.Observations, "observations", 200_000, "stored observations for search (the target is stated at 1 000 000; scaled down by default to load in seconds)")
	fs.IntVar(&opt.AuditEntries, "audit-entries", 200_000, "audit log size for audit-verify (the target is stated at 1 000 000)")
	fs.IntVar(&opt.Connections, "connections", 2000, "idle device connections for the connections scenario (the target is stated at 10 000)")
	fs.IntVar(&opt.SearchClients, "search-clients", 8, "concurrent EHR clients for search")
	fs.Int64Var(&opt.UpdateSize, "update-size", 4<<20, "bytes of the release the update scenario publishes and rolls out to --devices devices")
	fs.StringVar(&opt.Out, "out", "", "directory for results.csv, results.json, results.md and ratios.svg (default: a new temporary directory)")
	fs.StringVar(&opt.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run (server and clients) to this file")
	fs.BoolVar(&opt.Keep, "keep", false, "keep the temporary data dirs and server log")
	fs.StringVar(&opt.Store, "store", "sqlite", "database of the server under test: sqlite, or a postgres:// URL (a fresh schema is created for the run and dropped after)")
	idleDir := fs.String("idle-clients", "", "internal: run as the connections scenario's client process with the credentials in this directory")
	idleAddr := fs.String("idle-addr", "", "internal: server address for --idle-clients")
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "Usage: vitalgate bench [--scenario NAME|all] [--duration 20s] [--devices 64] [--out DIR] [flags]\n\n")
		fmt.Fprintf(m.Stderr, "Starts the real server on a temporary data dir on loopback and measures it against baselines\nmeasured in the same run. Scenarios:\n")
		for _, s := range bench.Scenarios {
			fmt.Fprintf(m.Stderr, "  %-13s %s\n", s, bench.ScenarioHelp[s])
		}
		fmt.Fprintln(m.Stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *idleDir != "" {
		return bench.IdleClients(ctx, *idleDir, *idleAddr, opt.Connections, m.Stdout)
	}
	var err error
	if opt.Scenarios, err = bench.ParseScenarios(*scenario); err != nil {
		return err
	}
	// Devices are registered as `vitalgate device add` registers them.
	opt.AddDevice = func(ctx context.Context, n *vgnode.Node, id, patient, model string) (string, error) {
		_, secret, err := m.addDevice(ctx, wrapNode(n), id, patient, model, time.Hour)
		return secret, err
	}
	return bench.Run(ctx, opt)
}
