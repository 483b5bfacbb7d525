package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vitalgate/vitalgate/node"
)

// Scenarios are the scenarios of `vitalgate bench`, in the order "all" runs them.
var Scenarios = []string{"ingest", "ingest-batch", "search", "hl7", "hl7-lab", "ingest-history", "connections", "audit-append", "audit-verify", "update", "export", "detect"}

// ScenarioHelp describes each scenario and its baseline for --help.
var ScenarioHelp = map[string]string{
	"ingest":         "single Observation POSTs (half with a new identifier each) from --devices devices over kept-alive mutual TLS; baseline: a handler that reads and discards the body, same TLS and clients; stored rows counted in the store",
	"ingest-batch":   "Bundles of 100 Observations (half identified); baseline: the same sealed row bytes inserted by the same driver into a primary-key-only table, one transaction per 100 rows, same durability (and the store's own CreateResources)",
	"search":         "a patient's last 24 h (GET /fhir/Observation?patient=&date=ge) among --observations stored; baseline: the same result bytes served from memory over the same TLS",
	"hl7":            "unique IHE PCD-01 ORU^R01 messages over MLLP/TLS answered AA, stored rows and database bytes counted in the store; baseline: an MLLP echo of the same frames over the same TLS; then retransmissions (recognised, not stored)",
	"hl7-lab":        "unique LRI ORU^R01 blood gas panels (6 results, a DiagnosticReport and a Specimen each) over MLLP/TLS answered AA, stored rows counted in the store; baseline: an MLLP echo of the same frames over the same TLS",
	"ingest-history": "identified FHIR Observations and unique HL7 messages into a store already holding --observations for the same patients, against the same load on an empty store (medians of interleaved runs)",
	"connections":    "memory per idle TLS-connected device at --connections connections (clients in a child process)",
	"audit-append":   "audit entries appended durably from --devices goroutines with the checkpointer running",
	"audit-verify":   "audit.Verify over the store on an --audit-entries log; baseline: SHA-256 over the same bytes",
	"export":         "a FHIR Bulk Data export ($export: kick-off, polling, the NDJSON file downloaded) of --observations stored, with the heap it grows by; baseline: the same rows read and opened in the server's process",
	"detect":         "labelled replays (simulated time, generator seeds not used for tuning): per attack whether and how fast it was detected, false alarms per 1000 device-hours; then single Observation POSTs from --devices devices with detection on; baseline: a server of the same run with detection off",
	"update":         "--devices devices pick up a rollout of a published --update-size release with the update client (offer, TUF verify, streamed download, reports) over mutual TLS; baseline: the same clients downloading the same file from disk over the same TLS",
}

// Options are the settings of a run: the flags of `vitalgate bench`, where it writes and
// what it needs from the command.
type Options struct {
	Scenarios     []string      // in the order given; see ParseScenarios
	Duration      time.Duration // measured time of each load run
	Warmup        time.Duration // unmeasured time before each load run
	Devices       int           // concurrent devices (ingest, ingest-batch, hl7) and audit writers
	Observations  int           // stored observations for search
	AuditEntries  int           // audit log size for audit-verify
	Connections   int           // idle device connections for the connections scenario
	SearchClients int           // concurrent EHR clients for search
	UpdateSize    int64         // bytes of the release the update scenario rolls out
	Out           string        // directory for the result files (default: a new temporary directory)
	CPUProfile    string        // write a CPU profile of the whole run here ("" for none)
	Keep          bool          // keep the temporary data dirs and server log
	Store         string        // "sqlite" or a PostgreSQL DSN (a fresh schema is made for the run)

	Stdout io.Writer // the result table
	Stderr io.Writer // progress
	Env    node.Env  // the clock and environment of the server under test

	// AddDevice registers a device of model and patient on the node under test and returns
	// its one-time enrollment secret, as `vitalgate device add` does.
	AddDevice func(ctx context.Context, n *node.Node, id, patient, model string) (secret string, err error)

	// The connections scenario runs its clients in a child process: this executable
	// (os.Executable) started as `EXE bench --idle-clients DIR --idle-addr ADDR
	// --connections N`, which must call IdleClients.
}

// ParseScenarios reads --scenario: "all", or a comma-separated list of Scenarios.
func ParseScenarios(v string) ([]string, error) {
	if v == "all" {
		return Scenarios, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(Scenarios, s) {
			return nil, fmt.Errorf("--scenario: unknown scenario %q (want all or one of %s)", s, strings.Join(Scenarios, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Validate checks the options (in the words of the flags).
func (o Options) Validate() error {
	switch {
	case len(o.Scenarios) == 0:
		return errors.New("--scenario: no scenario")
	case o.Duration < time.Second:
		return errors.New("--duration must be at least 1s")
	case o.Warmup < 0:
		return errors.New("--warmup must not be negative")
	case o.Devices < 1 || o.Devices > 1000:
		return errors.New("--devices must be between 1 and 1000")
	case o.Observations < 1440:
		return errors.New("--observations must be at least 1440 (one patient-day)")
	case o.AuditEntries < 1000:
		return errors.New("--audit-entries must be at least 1000")
	case o.Connections < 1:
		return errors.New("--connections must be at least 1")
	case o.SearchClients < 1 || o.SearchClients > 1000:
		return errors.New("--search-clients must be between 1 and 1000")
	case slices.Contains(o.Scenarios, "update") && (o.UpdateSize < 1024 || o.UpdateSize > 1<<30):
		return errors.New("--update-size must be between 1024 bytes and 1 GiB")
	case o.Stdout == nil || o.Stderr == nil:
		return errors.New("bench: Stdout and Stderr are required")
	case o.AddDevice == nil:
		return errors.New("bench: AddDevice is required")
	}
	return nil
}

// Run runs the scenarios of opt: it starts the real server on a temporary data dir on
// loopback, drives it with real clients over mutual TLS, measures each scenario and its
// same-run baseline, prints a table to Stdout and writes CSV, JSON, Markdown and an SVG
// chart of the ratios to opt.Out. Interrupted (ctx cancelled), it reports what was
// measured.
func Run(ctx context.Context, opt Options) error {
	if err := opt.Validate(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "vitalgate-bench-")
	if err != nil {
		return err
	}
	if opt.Keep {
		fmt.Fprintf(opt.Stderr, "Keeping the data dirs in %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if opt.Out == "" {
		if opt.Out, err = os.MkdirTemp("", "vitalgate-bench-results-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(opt.Out, 0o750); err != nil {
		return err
	}

	b := &benchRun{opt: opt, tmp: tmp, report: &Report{
		Machine: Machine(), Start: time.Now().UTC(), Settings: map[string]string{
			"scenarios": strings.Join(opt.Scenarios, ","), "duration": opt.Duration.String(), "warmup": opt.Warmup.String(),
			"devices": fmt.Sprint(opt.Devices), "observations": fmt.Sprint(opt.Observations),
			"audit_entries": fmt.Sprint(opt.AuditEntries), "connections": fmt.Sprint(opt.Connections),
			"search_clients": fmt.Sprint(opt.SearchClients), "update_size": fmt.Sprint(opt.UpdateSize),
		},
	}}
	mi := b.report.Machine
	fmt.Fprintf(opt.Stderr, "Vitalgate bench on %s (%d CPUs, %s, commit %s)\n", mi.CPU, mi.NumCPU, mi.GoVersion, mi.Commit)
	b.raiseFileLimit()

	if opt.CPUProfile != "" {
		f, err := os.Create(opt.CPUProfile)
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
	loadStart, _ := LoadAverage()
	start := time.Now()
	for _, s := range opt.Scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(opt.Stderr, "== %s: %s\n", s, ScenarioHelp[s])
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
	loadEnd, load1 := LoadAverage()
	b.report.Settings["loadavg_start"], b.report.Settings["loadavg_end"] = loadStart, loadEnd
	if load1 > float64(runtime.NumCPU()) {
		b.note(fmt.Sprintf("The machine was busy with other work: load average %s at the start and %s at the end on %d CPUs; figures and baselines share that noise, so compare ratios.",
			loadStart, loadEnd, runtime.NumCPU()))
	}
	if ctx.Err() != nil {
		fmt.Fprintln(opt.Stderr, "Interrupted: reporting what was measured.")
	}
	return b.writeResults()
}

// benchRun is one run of `vitalgate bench`: the server under test and what the scenarios
// share.
type benchRun struct {
	opt      Options
	tmp      string
	cleanups []func() // run by close (dropping a benchmark PostgreSQL schema)
	report   *Report

	srv     *benchServer   // started on first use
	servers []*benchServer // every server started (srv and those of ingest-history)
	devices []*benchDevice // enrolled on first use
	seq     atomic.Uint64  // identifier values of generated bodies (template.fill)
	batch   float64        // ingest-batch's stored obs/s, once measured (the hl7 target)
	audit   *benchAudit    // opened on first use

	progressWidth int
}

// scenario runs one scenario and returns its rows.
func (b *benchRun) scenario(ctx context.Context, name string) ([]Row, error) {
	switch name {
	case "ingest":
		return b.benchIngest(ctx)
	case "ingest-batch":
		return b.benchIngestBatch(ctx)
	case "search":
		return b.benchSearch(ctx)
	case "hl7":
		return b.benchHL7(ctx)
	case "hl7-lab":
		return b.benchHL7Lab(ctx)
	case "ingest-history":
		return b.benchIngestHistory(ctx)
	case "connections":
		return b.benchConnections(ctx)
	case "audit-append":
		return b.benchAuditAppend(ctx)
	case "audit-verify":
		return b.benchAuditVerify(ctx)
	case "update":
		return b.benchUpdate(ctx)
	case "export":
		return b.benchExport(ctx)
	case "detect":
		return b.benchDetect(ctx)
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

// close stops the server and closes the stores.
func (b *benchRun) close() {
	for _, s := range b.servers {
		s.stop()
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
	fmt.Fprintf(b.opt.Stderr, "\r%s%s", line, strings.Repeat(" ", pad))
}

// clearProgress ends the progress line.
func (b *benchRun) clearProgress() {
	if b.progressWidth > 0 {
		fmt.Fprintf(b.opt.Stderr, "\r%s\r", strings.Repeat(" ", b.progressWidth))
		b.progressWidth = 0
	}
}

// done replaces the progress line with a permanent line.
func (b *benchRun) done(format string, args ...any) {
	b.clearProgress()
	fmt.Fprintf(b.opt.Stderr, "   "+format+"\n", args...)
}

// load runs one measured load with a progress line.
func (b *benchRun) load(ctx context.Context, what, unit string, workers int, call Call) Summary {
	return b.loadHooks(ctx, what, unit, workers, nil, nil, call)
}

// loadCounted runs one measured load on srv and counts, in its store, the Observation rows
// and audit entries added over the measured window (Counts) and over the whole run, warm-up
// and the calls still running at the end included (Counts.Run), to set against what the
// server acknowledged in all (Summary.AllUnits).
func (b *benchRun) loadCounted(ctx context.Context, srv *benchServer, what, unit string, workers int, call Call) (Summary, Counts, error) {
	p := srv.probe()
	since := time.Now().Add(-time.Second) // the rows of this run only: a cheap count however large the store
	start, err := p.counts(ctx, since, false)
	if err != nil {
		return Summary{}, Counts{}, err
	}
	var before, after Counts
	var errs [2]error
	s := b.loadHooks(ctx, what, unit, workers,
		func() { before, errs[0] = p.counts(ctx, since, false) },
		func() { after, errs[1] = p.counts(ctx, since, false) }, call)
	end, err := p.counts(ctx, since, false)
	if err := errors.Join(append(errs[:], err)...); err != nil {
		return s, Counts{}, err
	}
	d := after.Sub(before)
	run := end.Sub(start)
	d.Run = &run
	fmt.Fprintf(b.opt.Stderr, "   counted in the store: %d Observation rows, %d audit entries added in the measured %s; %d rows in the whole run, %d %s acknowledged\n",
		d.Observations, d.Audit, s.Elapsed.Round(time.Millisecond), run.Observations, s.AllUnits, unit)
	return s, d, nil
}

// loadHooks runs one measured load with a progress line, calling atMeasure and atEnd (if
// set) when the measured window starts and ends.
func (b *benchRun) loadHooks(ctx context.Context, what, unit string, workers int, atMeasure, atEnd func(), call Call) Summary {
	s := Load(ctx, LoadOptions{Workers: workers, Duration: b.opt.Duration, Warmup: b.opt.Warmup, AtMeasure: atMeasure, AtEnd: atEnd,
		Progress: func(p Progress) {
			rate := 0.0
			if p.Elapsed > 0 {
				rate = float64(p.Units) / p.Elapsed.Seconds()
			}
			b.progress("   %s: %s %2.0fs/%.0fs  %d %s (%.0f/s)  %d errors", what, p.Phase, p.Elapsed.Seconds(), p.Total.Seconds(), p.Units, unit, rate, p.Errors)
		}}, call)
	b.done("%-34s %10.0f %s/s  p50 %6.2f ms  p99 %6.2f ms  p99.9 %6.2f ms  (%d calls, %d errors)", what+":", s.UnitRate(), unit,
		Millis(s.P50), Millis(s.P99), Millis(s.P999), s.Calls, s.Errors)
	if s.FirstErr != "" {
		fmt.Fprintf(b.opt.Stderr, "   first error: %s\n", s.FirstErr)
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
	fmt.Fprintln(b.opt.Stdout)
	if err := rep.WriteTable(b.opt.Stdout, false); err != nil {
		return err
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(b.opt.Stdout, "note: %s\n", n)
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
		path := filepath.Join(b.opt.Out, f.name)
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
	fmt.Fprintf(b.opt.Stderr, "Results: %s/{results.csv,results.json,results.md,ratios.svg} (%s in all)\n", b.opt.Out, rep.Duration.Round(time.Second))
	return nil
}

// note adds a note to the report once.
func (b *benchRun) note(n string) {
	if !slices.Contains(b.report.Notes, n) {
		b.report.Notes = append(b.report.Notes, n)
	}
}

// errorNote describes failed calls of a summary for a row, or "".
func errorNote(s Summary) string {
	if s.Errors == 0 {
		return ""
	}
	return fmt.Sprintf("%d failed calls, first: %s", s.Errors, s.FirstErr)
}
