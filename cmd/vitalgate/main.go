// Command vitalgate is the Vitalgate server and its operator tools: init, serve, device,
// keys, export, demo and simulate. main only builds Main and calls Run; every subcommand is
// a method of Main so that tests can run the real commands in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vitalgate/vitalgate/rollout"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Now: time.Now}
	os.Exit(m.Run(ctx, os.Args[1:]))
}

// Main runs vitalgate subcommands. Secrets a command prints go alone to Stdout; guidance
// and logs go to Stderr.
type Main struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	Now    func() time.Time
	// Ready, if set, is called by serve and demo with the HTTPS address once it listens.
	Ready func(addr string)
	// Releases, if set, returns the release repository of a data dir that update rollout
	// checks releases against (tests set it; otherwise the build's repository).
	Releases func(dataDir string) rollout.Releases
}

type command struct {
	summary string
	run     func(m *Main, ctx context.Context, args []string) error
}

var commands = map[string]command{
	"init":     {"create a data dir: CA, server certificate, keys, database, first admin client", (*Main).runInit},
	"serve":    {"run the HTTPS server (EST enrollment, FHIR ingest over mutual TLS)", (*Main).runServe},
	"device":   {"register (add, import), reissue secrets, list, assign, revoke, quarantine or release devices", (*Main).runDevice},
	"assess":   {"outside-in security assessment of a running deployment", (*Main).runAssess},
	"audit":    {"verify the tamper-evident audit log offline, print its checkpoint, export it", (*Main).runAudit},
	"client":   {"register, list, disable, rotate and re-scope API clients (EHR, clinician app, auditor, admin)", (*Main).runClient},
	"user":     {"add, list, disable or reset the people who sign in to the web console (password and TOTP)", (*Main).runUser},
	"keys":     {"rotate the key-encryption key", (*Main).runKeys},
	"site":     {"add, list or erase sites (the hospitals or facilities a deployment serves)", (*Main).runSite},
	"model":    {"add, set or list device models and their patient binding (assigned or identified)", (*Main).runModel},
	"unit":     {"add or list the care units (wards) of a site", (*Main).runUnit},
	"export":   {"write stored resources as FHIR NDJSON to standard output", (*Main).runExport},
	"demo":     {"run a server with simulated devices on a temporary data dir", (*Main).runDemo},
	"sbom":     {"print a CycloneDX SBOM of this binary", (*Main).runSBOM},
	"simulate": {"stream simulated vital signs from devices to a server", (*Main).runSimulate},
	"bench":    {"throughput and latency against same-run baselines", (*Main).runBench},
	"patient":  {"erase a patient (two operators: one requests, another approves), place or release a legal hold, admit to or discharge from a care unit", (*Main).runPatient},
	"evidence": {"signed regulatory evidence report of a deployment (FDA, HIPAA, MDS2), and its check", (*Main).runEvidence},
	"backup":   {"encrypted backup of a data dir while it serves (a consistent snapshot), recovery keys, the erasure tombstone export", (*Main).runBackup},
	"restore":  {"restore a backup into a new data dir (verified, erasures replayed, new audit epoch), or --verify-only", (*Main).runRestore},
	"posture":  {"vulnerability posture of the fleet: SBOMs per model version, OSV advisories, KEV, VEX; per device", (*Main).runPosture},
	"alerts":   {"list, acknowledge and resolve security alerts raised by detection", (*Main).runAlerts},
	"update":   {"signed device software updates (TUF): keys, publish, sign, status, rotate-root; staged rollouts and maintenance windows", (*Main).runUpdate},
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

// Run executes the subcommand named by args[0] and returns the process exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		m.usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(m.Stderr, "vitalgate: unknown command %q\n\n", args[0])
		m.usage()
		return 2
	}
	err := c.run(m, ctx, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(m.Stderr, "vitalgate %s: %v\n", args[0], err)
	return 1
}

func (m *Main) usage() {
	fmt.Fprintln(m.Stderr, "Vitalgate: secure connectivity backend for connected medical devices.")
	fmt.Fprintln(m.Stderr, "\nUsage: vitalgate COMMAND [flags]   (vitalgate COMMAND --help for its flags)\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(m.Stderr, "  %-9s %s\n", n, commands[n].summary)
	}
}

// flags returns a FlagSet that writes its help to Stderr.
func (m *Main) flags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: vitalgate %s\n\n", usage)
		printDefaults(fs)
	}
	return fs
}

// argNames are the argument names help shows for flags (flag.PrintDefaults would take a
// back-quoted word of the usage text for it, such as "vitalgate init").
var argNames = map[string]string{
	"data": "DIR", "id": "ID", "patient": "ID", "model": "MODEL", "role": "ROLE", "scope": "SCOPE",
	"host": "NAME", "key": "FILE", "checkpoint": "FILE", "ca": "FILE", "jwks": "FILE", "syslog-ca": "FILE",
	"out": "FILE", "secrets": "FILE", "public-url": "URL", "server": "URL", "store": "STORE", "schema": "NAME",
	"format": "FORMAT", "since": "TIME", "device": "ID:PATIENT:SECRET[:KIND]", "hl7-authority": "NAMESPACE=SYSTEM",
	"log-level": "LEVEL", "scenario": "NAME", "keys": "KEYDIR", "new-keys": "KEYDIR", "version": "V", "sbom": "FILE",
	"threshold": "N", "max-size": "BYTES", "devices": "ID,...", "percent": "P,...", "reason": "TEXT", "hours": "HH:MM-HH:MM", "days": "DAYS", "zone": "ZONE",
	"in": "FILE", "archive": "FILE", "before": "DATE", "retention": "AGE", "skip-outbox": "DEST", "recovery-pub": "FILE", "recovery-key": "KEY", "tombstones": "FILE", "export": "FILE", "record": "DIR",
}

// printDefaults is flag.PrintDefaults with argument names from argNames (or the flag's
// type), so that back-quoted words in a usage text stay words.
func printDefaults(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		plain := *f
		plain.Usage = strings.ReplaceAll(f.Usage, "`", "")
		name, _ := flag.UnquoteUsage(&plain)
		switch {
		case name == "":
		case strings.HasSuffix(f.Name, "addr"):
			name = "HOST:PORT"
		case argNames[f.Name] != "":
			name = argNames[f.Name]
		}
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		line += "\n    \t" + strings.ReplaceAll(f.Usage, "\n", "\n    \t")
		if showDefault(f) {
			if _, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok && name != "" && isString(f) {
				line += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				line += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		fmt.Fprintln(fs.Output(), line)
	})
}

// showDefault reports whether a flag's default is worth printing (not a zero value).
func showDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return false
	}
	return true
}

// isString reports whether f is a plain string flag (its default is shown quoted).
func isString(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(string)
	return ok
}

// parse parses flags and rejects positional arguments unless allowed.
func parse(fs *flag.FlagSet, args []string, positional bool) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard) // the parse error and the usage are reported below, with a hint
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return err
	}
	if err != nil {
		fmt.Fprintln(out, err)
		if hint := flagHint(fs, args); hint != "" {
			fmt.Fprintln(out, hint)
		} else {
			fs.Usage()
		}
		return errUsage
	}
	if !positional && fs.NArg() > 0 {
		fmt.Fprintf(out, "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	var bad error
	fs.Visit(func(f *flag.Flag) {
		if bad == nil && strings.HasSuffix(f.Name, "addr") && isPortOnly(f.Value.String()) {
			bad = fmt.Errorf("--%s %s is a port alone: give a host too, e.g. --%s 127.0.0.1:%s (this machine only) or --%s 0.0.0.0:%s (every interface)",
				f.Name, f.Value, f.Name, f.Value, f.Name, f.Value)
		}
	})
	if bad != nil {
		fmt.Fprintln(out, bad)
		return errUsage
	}
	return nil
}

// isPortOnly reports whether v is a bare port number (or ":port" is missing its colon).
func isPortOnly(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// flagHint suggests the fix of a flag value that did not parse: a duration without a unit,
// an address without a host.
func flagHint(fs *flag.FlagSet, args []string) string {
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name == "" {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if !hasVal && i+1 < len(args) {
			val = args[i+1]
		}
		g, ok := f.Value.(flag.Getter)
		if !ok {
			continue
		}
		if _, isDur := g.Get().(time.Duration); isDur {
			if _, err := time.ParseDuration(val); err != nil {
				if _, err := time.ParseDuration(val + "s"); err == nil {
					return fmt.Sprintf("--%s takes a duration with a unit: did you mean --%s %ss? (units: ms, s, m, h)", name, name, val)
				}
				return fmt.Sprintf("--%s takes a duration with a unit, such as 30s, 5m or 24h", name)
			}
		}
	}
	return ""
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// dispatch runs the subcommand named by args[0] of a command group (device add, audit
// verify, ...); with no or an unknown subcommand it prints the group's usage.
func (m *Main) dispatch(ctx context.Context, group string, args []string, subs map[string]func(context.Context, []string) error) error {
	if len(args) > 0 {
		if run, ok := subs[args[0]]; ok {
			return run(ctx, args[1:])
		}
	}
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(args) > 0 && args[0] != "-h" && args[0] != "--help" && args[0] != "help" {
		fmt.Fprintf(m.Stderr, "vitalgate %s: unknown subcommand %q\n", group, args[0])
	}
	fmt.Fprintf(m.Stderr, "Usage: vitalgate %s %s --data DIR ...   (vitalgate %s SUBCOMMAND --help for its flags)\n",
		group, strings.Join(names, "|"), group)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return nil
	}
	return errUsage
}
