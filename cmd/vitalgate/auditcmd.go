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
		"verify": m.auditVerify, "checkpoint": m.auditCheckpoint, "export": m.auditExport, "archive": m.auditArchive,
	})
}

// auditVerify recomputes the whole Merkle tree from the stored entries and checks every
// stored checkpoint (and an optional kept copy) against it with the public key only.
func (m *Main) auditVerify(ctx context.Context, args []string) error {
	fs := m.flags("audit verify", "audit verify --data DIR [--key audit.pub] [--checkpoint FILE]... [--archive FILE|DIR... --recovery-key KEY] [--json]")
	dir := fs.String("data", "", "data directory (or a copy of it)")
	keyFile := fs.String("key", "", "verifier key file (default DIR/audit.pub); keep a copy elsewhere and pass it here")
	var kept stringList
	fs.Var(&kept, "checkpoint", "a checkpoint kept elsewhere (from `vitalgate audit checkpoint`): the log must extend it (repeatable)")
	var archives stringList
	fs.Var(&archives, "archive", "an archive segment (from `vitalgate audit archive`), or a directory of *"+backup.SegmentExt+" files: the archived entries are checked against it (repeatable)")
	recoveryKey := fs.String("recovery-key", "", "with --archive: the recovery private key the segments are encrypted to")
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
	segs, err := loadSegments(ctx, archives, *recoveryKey, v)
	if err != nil {
		return fmt.Errorf("AUDIT LOG DOES NOT VERIFY: %w", err)
	}
	recorded, err := n.store.AuditSegments(ctx)
	if err != nil {
		return err
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
	rep, err := audit.VerifyArchive(ctx, audit.StoreLog{Store: n.store}, cps, epochs, segmentContents(segs), v, progress)
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
			"checkpoints": rep.Checkpoints, "unsigned": rep.Unsigned, "seconds": rep.Duration.Seconds(), "epochs": rep.Epochs, "superseded": rep.Superseded,
			"archived": rep.Archived, "archive_checked": rep.ArchiveChecked, "segments_checked": rep.Segments, "segments_recorded": len(recorded)})
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
	m.reportArchive(rep, recorded)
	return nil
}

// reportArchive says what verification did with the archived entries and the segments.
func (m *Main) reportArchive(rep *audit.Report, recorded []vitalgate.AuditSegment) {
	if rep.Archived == 0 && len(rep.Segments) == 0 {
		return
	}
	if rep.Archived > 0 {
		fmt.Fprintf(m.Stdout, "archived: entries 0 to %d are archived: their leaf hashes are in the tree and verify against the checkpoints; %d entries were checked against their data in %d segments\n",
			rep.Archived-1, rep.ArchiveChecked, len(rep.Segments))
	} else {
		fmt.Fprintf(m.Stdout, "archived: no entry of this log is archived; %d entries were checked against their copies in %d segments\n", rep.ArchiveChecked, len(rep.Segments))
	}
	for _, s := range rep.Segments {
		fmt.Fprintf(m.Stdout, "segment checked: %s\n", s)
	}
	for _, g := range recorded {
		fmt.Fprintf(m.Stdout, "segment recorded: %s (entries %d to %d), file SHA-256 %s, keep until %s\n", g.ID, g.From, g.To-1, g.File, g.KeepUntil.Format("2006-01-02"))
	}
	if rep.ArchiveChecked < rep.Archived {
		fmt.Fprintf(m.Stdout, "not checked against their data: %d archived entries (pass their segments with --archive and --recovery-key)\n", rep.Archived-rep.ArchiveChecked)
	}
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
	fs := m.flags("audit export", "audit export --data DIR [--format fhir|syslog] [--archive FILE|DIR... --recovery-key KEY]")
	dir := fs.String("data", "", "data directory")
	format := fs.String("format", "fhir", "fhir (NDJSON AuditEvents) or syslog (RFC 5424 lines)")
	var archives stringList
	fs.Var(&archives, "archive", "an archive segment, or a directory of them: its entries are exported too (repeatable)")
	recoveryKey := fs.String("recovery-key", "", "with --archive: the recovery private key the segments are encrypted to")
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
	var segs []*backup.OpenedSegment
	if len(archives) > 0 {
		v, err := vgnode.ReadVerifier(filepath.Join(n.dir, vgnode.AuditPubFile))
		if err != nil {
			return err
		}
		if segs, err = loadSegments(ctx, archives, *recoveryKey, v); err != nil {
			return err
		}
	}
	host, _ := os.Hostname()
	w := bufio.NewWriter(m.Stdout)
	var archived uint64
	err = n.store.AuditEntries(ctx, 0, size, func(r vitalgate.AuditRecord) error {
		if r.Archived() {
			for _, g := range segs {
				if c := g.Content; len(r.Hash) == audit.HashSize && r.Index >= c.From && r.Index < c.To() && audit.LeafHash(c.Entries[r.Index-c.From]) == [audit.HashSize]byte(r.Hash) {
					r.Data = c.Entries[r.Index-c.From]
				}
			}
		}
		if r.Archived() {
			archived++
			return nil
		}
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
	if archived > 0 {
		fmt.Fprintf(m.Stderr, "%d archived entries are not in the live log and were not exported: their data is in the archive segments (give them with --archive and --recovery-key).\n", archived)
	}
	return w.Flush()
}
