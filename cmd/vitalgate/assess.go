package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/vitalgate/vitalgate/assess"
)

// runAssess is `vitalgate assess https://HOST:PORT [--ca FILE] [--json] [--timeout 60s]`:
// an outside-in security assessment of a running deployment (package assess). The report
// goes to standard output (text, or JSON with --json); a one-line note goes to standard
// error.
//
// Exit status: 0 when the assessment completed and nothing is rated high or critical; 1
// when a finding is high or critical, when the assessment did not finish in time (the
// partial report is still printed), or when the target is unreachable over TLS; 2 for a
// usage error.
func (m *Main) runAssess(ctx context.Context, args []string) error {
	fs := m.flags("assess", "assess https://HOST:PORT [--ca FILE] [--json] [--timeout 60s]")
	caFile := fs.String("ca", "", "PEM file of the CA certificate(s) that should vouch for the server (default: the system roots); for Vitalgate, the data dir's ca.crt")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 60*time.Second, "time limit for the whole assessment")
	// Flags may come before or after the target.
	var positional []string
	rest := args
	for {
		if err := parse(fs, rest, true); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fmt.Fprintln(m.Stderr, "assess needs exactly one target, e.g. https://vitalgate.example.org:8443")
		fs.Usage()
		return errUsage
	}
	if *timeout <= 0 {
		fmt.Fprintln(m.Stderr, "--timeout must be positive")
		return errUsage
	}
	if _, _, _, err := assess.ParseTarget(positional[0]); err != nil {
		fmt.Fprintln(m.Stderr, err)
		return errUsage
	}
	opts := assess.Options{Target: positional[0], Timeout: *timeout, Now: m.Now}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile) // #nosec G304 -- the operator names the file
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca %s: no PEM certificate found", *caFile)
		}
		opts.RootCAs = pool
	}
	fmt.Fprintf(m.Stderr, "assessing %s (at most %s; this leaves authentication failures in its audit log)\n", opts.Target, *timeout)
	rep, err := assess.Run(ctx, opts)
	if rep != nil {
		var werr error
		if *asJSON {
			werr = rep.WriteJSON(m.Stdout)
		} else {
			werr = rep.WriteText(m.Stdout)
		}
		if werr != nil {
			return werr
		}
	}
	switch {
	case errors.Is(err, assess.ErrIncomplete):
		return err
	case err != nil:
		return fmt.Errorf("cannot assess %s: %w", opts.Target, err)
	}
	if n := rep.Count(assess.High); n > 0 {
		return fmt.Errorf("%d findings rated high or critical (worst: %s)", n, rep.MaxSeverity())
	}
	return nil
}
