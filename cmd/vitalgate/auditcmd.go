package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/backup"
	vgnode "github.com/vitalgate/vitalgate/node"
)

func (m *Main) runAudit(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "audit", args, map[string]func(context.Context, []string) error{
		"verify": m.auditVerify, "checkpoint": m.auditCheckpoint, "export": m.auditExport,
	})
}

// auditVerify recomputes the whole Merkle tree from the stored entries and checks every
// stored checkpoint (and an optional kept copy) against it with the public key only.
func (m *Main) auditVerify(ctx context.Context, args []string) error {
	fs := m.flags("audit verify", "audit verify --data DIR [--key audit.pub] [--checkpoint FILE]... [--json]")
	dir := fs.String("data", "", "data directory (or a copy of it)")
	keyFile := fs.String("key", "", "verifier key file (default DIR/audit.pub); keep a copy elsewhere and pass it here")
	var kept stringList
	fs.Var(&kept, "checkpoint", "a checkpoint kept elsewhere (from `vitalgate audit checkpoint`): the log must extend it (repeatable)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if *keyFile == "" {
		*keyFile = filepath.Join(n.dir, vgnode.AuditPubFile)
	}
	v, err := vgnode.ReadVerifier(*keyFile)
	if err != nil {
		return fmt.Errorf("verifier key %s: %w", *keyFile, err)
	}
	stored, err := n.store.AuditCheckpoints(ctx)
	if err != nil {
		return err
	}
	cps := audit.SignedCheckpoints(stored)
	for _, f := range kept {
		note, err := os.ReadFile(f) // #nosec G304 -- the operator names the file
		if err != nil {
			return err
		}
		cps = append(cps, audit.SignedCheckpoint{Note: note, Source: f, Witness: true})
	}
	start := time.Now()
	last := time.Now()
	progress := func(done, total uint64) {
		if time.Since(last) > time.Second {
			last = time.Now()
			fmt.Fprintf(m.Stderr, "\rverifying: %d / %d entries", done, total)
		}
	}
	epochs, err := backup.ReadEpochs(n.dir) // restores: the log verifies across its epochs
	if err != nil {
		return err
	}
	rep, err := audit.VerifyEpochs(ctx, audit.StoreLog{Store: n.store}, cps, epochs, v, progress)
	if time.Since(start) > time.Second {
		fmt.Fprintln(m.Stderr)
	}
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		if *asJSON {
			_ = json.NewEncoder(m.Stdout).Encode(map[string]any{"ok": false, "error": ve.Error(), "index": ve.Index, "source": ve.Source})
		}
		return fmt.Errorf("AUDIT LOG DOES NOT VERIFY: %s", ve.Error())
	} else if err != nil {
		return fmt.Errorf("could not verify: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(m.Stdout).Encode(map[string]any{"ok": true, "entries": rep.Entries, "bytes": rep.Bytes,
			"checkpoints": rep.Checkpoints, "unsigned": rep.Unsigned, "seconds": rep.Duration.Seconds(), "epochs": rep.Epochs, "superseded": rep.Superseded})
	}
	fmt.Fprintf(m.Stdout, "OK: %d entries (%d bytes) and %d checkpoints verify with key %s", rep.Entries, rep.Bytes, rep.Checkpoints, v.Name())
	if rep.Unsigned > 0 {
		fmt.Fprintf(m.Stdout, "; the last %d entries are not yet covered by a checkpoint", rep.Unsigned)
	}
	if rep.Epochs > 1 {
		fmt.Fprintf(m.Stdout, "; %d epochs (restored %d times from a backup, each restore recorded in the log)", rep.Epochs, rep.Epochs-1)
	}
	fmt.Fprintf(m.Stdout, " (%.2fs)\n", rep.Duration.Seconds())
	for _, s := range rep.Superseded {
		fmt.Fprintf(m.Stdout, "superseded by a restore: %s\n", s)
	}
	return nil
}

// auditCheckpoint prints the latest signed checkpoint, so an operator can keep it elsewhere.
func (m *Main) auditCheckpoint(ctx context.Context, args []string) error {
	fs := m.flags("audit checkpoint", "audit checkpoint --data DIR")
	dir := fs.String("data", "", "data directory")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	alog, err := n.AuditLog("cli")
	if err != nil {
		return err
	}
	if _, err := alog.Checkpoint(ctx); err != nil { // sign the entries not yet covered
		return err
	}
	note, err := alog.Latest(ctx)
	if err != nil {
		return err
	}
	_, err = m.Stdout.Write(note)
	return err
}

// auditExport writes every entry as a FHIR AuditEvent (NDJSON) or an RFC 5424 syslog line.
func (m *Main) auditExport(ctx context.Context, args []string) error {
	fs := m.flags("audit export", "audit export --data DIR [--format fhir|syslog]")
	dir := fs.String("data", "", "data directory")
	format := fs.String("format", "fhir", "fhir (NDJSON AuditEvents) or syslog (RFC 5424 lines)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *format != "fhir" && *format != "syslog" {
		return fmt.Errorf("--format must be fhir or syslog")
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	size, err := n.store.AuditSize(ctx)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	w := bufio.NewWriter(m.Stdout)
	err = n.store.AuditEntries(ctx, 0, size, func(r vitalgate.AuditRecord) error {
		e, err := audit.UnmarshalEntry(r.Data)
		if err != nil {
			return fmt.Errorf("entry %d: %w", r.Index, err)
		}
		if *format == "syslog" {
			_, err = w.WriteString(audit.Syslog(e, host, "vitalgate") + "\n")
			return err
		}
		b, err := e.FHIR(r.Index)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return err
	}
	return w.Flush()
}
