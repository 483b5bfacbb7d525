package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vitalgate/vitalgate/evidence"
)

func (m *Main) runEvidence(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "evidence", args, map[string]func(context.Context, []string) error{
		"report": m.evidenceReport, "verify": m.evidenceVerify,
	})
}

// evidenceReport writes the signed regulatory evidence report of the data dir's deployment
// (package evidence) and records its digest in the audit log.
func (m *Main) evidenceReport(ctx context.Context, args []string) error {
	fs := m.flags("evidence report", "evidence report --data DIR [--format html|md|json|mds2] [--out FILE] [--results FILE] [--assess FILE] [--audit-verify=false]")
	dir := fs.String("data", "", "data directory")
	format := fs.String("format", evidence.FormatHTML, "html, md, json, or mds2 (the MDS2 2019 answers as CSV)")
	out := fs.String("out", "", "write the report to FILE (default standard output)")
	results := fs.String("results", "", "`go test -json` output: include each listed test's last result")
	assessFile := fs.String("assess", "", "JSON of `vitalgate assess --json` to include")
	verify := fs.Bool("audit-verify", true, "verify the whole audit log with audit.pub and include the result")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	d, err := n.EvidenceDeployment()
	if err != nil {
		return err
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		return err
	}
	res, err := evidence.Generate(ctx, d, alog, evidence.Options{Format: *format, VerifyAudit: *verify, AssessFile: *assessFile,
		ResultsFile: *results, Now: m.Now, Operator: operator()})
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = m.Stdout.Write(res.Report)
	} else {
		err = os.WriteFile(*out, res.Report, 0o600)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "Evidence report signed by key %s; its digest sha256:%s is in the audit log.\n", res.KeyID, res.Digest)
	return nil
}

// evidenceVerify checks a report's signature and, with --data, that the deployment's audit
// log recorded it; exit 0 only if both hold.
func (m *Main) evidenceVerify(ctx context.Context, args []string) error {
	fs := m.flags("evidence verify", "evidence verify FILE (--key evidence.pub | --data DIR)")
	keyFile := fs.String("key", "", "the report signer's public key file (evidence.pub)")
	dir := fs.String("data", "", "data directory whose evidence.pub to use")
	var files []string
	rest := args
	for { // flags may come before or after the file
		if err := parse(fs, rest, true); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 || (*keyFile == "") == (*dir == "") {
		fmt.Fprintln(m.Stderr, "evidence verify needs one report file and either --key or --data")
		fs.Usage()
		return errUsage
	}
	if *keyFile == "" {
		*keyFile = filepath.Join(*dir, evidence.PublicKeyFile)
	}
	c, err := evidence.VerifyFile(files[0], *keyFile)
	if err != nil {
		return fmt.Errorf("REPORT DOES NOT VERIFY: %w", err)
	}
	if *dir == "" {
		fmt.Fprintf(m.Stdout, "OK: signed by key %s; sha256:%s (find it in the audit log: vitalgate audit export)\n", c.KeyID, c.Digest)
		return nil
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	idx, found, err := evidence.Recorded(ctx, n.store, c.Digest)
	if err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	if !found {
		return fmt.Errorf("the signature verifies (key %s), but this deployment's audit log has no record of sha256:%s", c.KeyID, c.Digest)
	}
	fmt.Fprintf(m.Stdout, "OK: signed by key %s; sha256:%s, recorded in the audit log as entry %d\n", c.KeyID, c.Digest, idx)
	return nil
}
