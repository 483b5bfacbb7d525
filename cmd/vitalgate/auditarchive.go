package main

import (
	"bufio"
	"context"
	"crypto/hpke"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/backup"
)

// auditArchive is `vitalgate audit archive`: the entries older than --before move into a
// sealed segment file, and only their leaf hashes stay in the live log.
func (m *Main) auditArchive(ctx context.Context, args []string) error {
	fs := m.flags("audit archive", "audit archive --data DIR --before DATE --out FILE --recovery-pub FILE [--retention 6y] [--skip-outbox DEST]... [--json]")
	dir := fs.String("data", "", "data directory (the server may be running)")
	beforeFlag := fs.String("before", "", "archive the entries older than this date (YYYY-MM-DD, UTC midnight, or RFC 3339), up to a signed checkpoint")
	out := fs.String("out", "", "the segment file to write (must not exist; name it *"+backup.SegmentExt+")")
	pubFile := fs.String("recovery-pub", "", "the recovery public key (recovery.pub from `vitalgate backup keys init`): the segment is encrypted to it")
	retention := fs.String("retention", backup.DefaultRetention.String(), "how long the segment must be kept after its newest entry (years and/or days: 6y, 2190d), signed into it as its keep-until date")
	var skip stringList
	fs.Var(&skip, "skip-outbox", "an outbox destination (syslog:HOST:PORT) no longer used, whose undelivered entries may be archived: it will never get them (repeatable)")
	asJSON := fs.Bool("json", false, "print what was archived as JSON")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *beforeFlag == "" || *out == "" || *pubFile == "" {
		return errors.New("audit archive needs --before DATE, --out FILE and --recovery-pub FILE")
	}
	before, err := time.Parse(time.RFC3339, *beforeFlag)
	if err != nil {
		if before, err = time.Parse("2006-01-02", *beforeFlag); err != nil {
			return fmt.Errorf("--before %q: give a date (YYYY-MM-DD) or an RFC 3339 time", *beforeFlag)
		}
	}
	if before.After(m.Now()) {
		return fmt.Errorf("--before %s is in the future: only entries already logged can be archived", *beforeFlag)
	}
	ret, err := backup.ParseRetention(*retention)
	if err != nil {
		return err
	}
	pemPub, err := os.ReadFile(*pubFile) // #nosec G304 -- the operator names the file
	if err != nil {
		return err
	}
	pub, err := backup.ParseRecoveryPublicKey(pemPub)
	if err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	signer, err := n.AuditSigner()
	if err != nil {
		return err
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		return err
	}
	epochs, err := backup.ReadEpochs(n.dir)
	if err != nil {
		return err
	}
	res, err := backup.Archive(ctx, backup.ArchiveRequest{Store: n.store, Log: alog, Signer: signer, Epochs: epochs, Before: before,
		Retention: ret, Operator: operator(), Now: m.Now, SkipOutbox: skip}, *out, pub)
	if errors.Is(err, backup.ErrNothingToArchive) { // not a failure: a scheduled archive may find nothing old enough
		fmt.Fprintf(m.Stderr, "Nothing archived, %s not written: %v\n", *out, err)
		if *asJSON {
			return json.NewEncoder(m.Stdout).Encode(map[string]any{"id": nil, "entries": 0})
		}
		return nil
	}
	if err != nil {
		return err
	}
	s := res.Segment
	if *asJSON {
		return json.NewEncoder(m.Stdout).Encode(map[string]any{"id": s.ID, "from": s.From, "to": s.To, "entries": s.To - s.From,
			"checkpoints": s.Checkpoints, "before": s.Before, "newest": s.LastTime, "retention": s.Retention.String(), "keep_until": s.KeepUntil,
			"file": *out, "sha256": res.File, "bytes": res.Bytes})
	}
	fmt.Fprintf(m.Stdout, "OK: archived entries %d to %d (%d entries, %d checkpoints, the newest of %s) into segment %s: %s (%d bytes, SHA-256 %s); keep it until %s (retention %s)\n",
		s.From, s.To-1, s.To-s.From, s.Checkpoints, s.LastTime.Format(time.RFC3339), s.ID, *out, res.Bytes, res.File, s.KeepUntil.Format("2006-01-02"), s.Retention)
	if res.HeldBack != "" {
		fmt.Fprintf(m.Stderr, "The archive stops short of the cutoff: outbox destination %s has not delivered the later entries yet.\n", res.HeldBack)
	}
	fmt.Fprintf(m.Stderr, "The live log keeps their leaf hashes: its size, root and checkpoints are unchanged. Keep the segment with your backups (it is encrypted to the recovery key) and check it with `vitalgate audit verify --data %s --archive %s --recovery-key recovery.key`.\n", *dir, *out)
	return nil
}

// loadSegments opens the segment files named by paths (files, or directories whose
// *.vgsegment files are read) with the recovery key, each verified on its own with v.
func loadSegments(ctx context.Context, paths []string, keyFile string, v audit.Verifier) ([]*backup.OpenedSegment, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	if keyFile == "" {
		return nil, errors.New("--archive needs --recovery-key KEY: segments are encrypted to the recovery key")
	}
	keyPEM, err := os.ReadFile(keyFile) // #nosec G304 -- the operator names the file
	if err != nil {
		return nil, err
	}
	priv, err := backup.ParseRecoveryKey(keyPEM)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		es, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if e.Type().IsRegular() && strings.HasSuffix(e.Name(), backup.SegmentExt) {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	slices.Sort(files)
	var out []*backup.OpenedSegment
	for _, f := range files {
		s, err := openSegment(ctx, f, priv, v)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func openSegment(ctx context.Context, path string, priv hpke.PrivateKey, v audit.Verifier) (*backup.OpenedSegment, error) {
	f, err := os.Open(path) // #nosec G304 -- the operator names the file
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := backup.OpenSegment(ctx, bufio.NewReaderSize(f, 1<<20), priv, v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// segmentContents returns what VerifyArchive reads of the opened segments.
func segmentContents(segs []*backup.OpenedSegment) []audit.ArchivedSegment {
	out := make([]audit.ArchivedSegment, len(segs))
	for i, s := range segs {
		out[i] = s.Content
	}
	return out
}
