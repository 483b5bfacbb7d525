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
}

type command struct {
	summary string
	run     func(m *Main, ctx context.Context, args []string) error
}

var commands = map[string]command{
	"init":     {"create a data dir: CA, server certificate, keys, database, first admin client", (*Main).runInit},
	"serve":    {"run the HTTPS server (EST enrollment, FHIR ingest over mutual TLS)", (*Main).runServe},
	"device":   {"register (add), list or revoke devices", (*Main).runDevice},
	"assess":   {"outside-in security assessment of a running deployment", (*Main).runAssess},
	"audit":    {"verify the tamper-evident audit log offline, print its checkpoint, export it", (*Main).runAudit},
	"client":   {"register, list, disable, rotate and re-scope API clients (EHR, clinician app, auditor, admin)", (*Main).runClient},
	"keys":     {"rotate the key-encryption key", (*Main).runKeys},
	"site":     {"add or list sites (the hospitals or facilities a deployment serves)", (*Main).runSite},
	"model":    {"add, set or list device models and their patient binding (assigned or identified)", (*Main).runModel},
	"export":   {"write stored resources as FHIR NDJSON to standard output", (*Main).runExport},
	"demo":     {"run a server with simulated devices on a temporary data dir", (*Main).runDemo},
	"sbom":     {"print a CycloneDX SBOM of this binary", (*Main).runSBOM},
	"simulate": {"stream simulated vital signs from devices to a server", (*Main).runSimulate},
	"bench":    {"throughput and latency against same-run baselines", (*Main).runBench},
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
		fmt.Fprintf(m.Stderr, "Usage: vitalgate %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and rejects positional arguments unless allowed.
func parse(fs *flag.FlagSet, args []string, positional bool) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if !positional && fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
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
	fmt.Fprintf(m.Stderr, "Usage: vitalgate %s %s --data DIR ...   (vitalgate %s SUBCOMMAND --help for its flags)\n",
		group, strings.Join(names, "|"), group)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return nil
	}
	return errUsage
}
