package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// ArchiveStore is what Archive needs of a store (both stores have it).
type ArchiveStore interface {
	audit.AuditReader
	// AuditCheckpoints returns every stored checkpoint in ascending size order.
	AuditCheckpoints(ctx context.Context) ([]vitalgate.AuditCheckpoint, error)
	vitalgate.AuditArchiver
	// OutboxCursors returns every outbox destination's next entry to deliver.
	OutboxCursors(ctx context.Context) (map[string]uint64, error)
}

// ArchiveRequest is an archive of the audit log's entries older than Before.
type ArchiveRequest struct {
	Store  ArchiveStore
	Log    *audit.Log // records the archive and signs a checkpoint after it
	Signer *audit.Signer
	Epochs []audit.Epoch // the data dir's epoch records (the log must verify across them)
	Before time.Time
	// Retention is how long the segment must be kept after its newest entry (the keep-until
	// date signed into it). Zero means DefaultRetention.
	Retention Retention
	Operator  string
	Now       func() time.Time
	// SkipOutbox names outbox destinations whose cursor may be passed (a destination no
	// longer used): the entries archived before it delivered them are never delivered to it.
	SkipOutbox []string
}

// Archived is what Archive did.
type Archived struct {
	Segment Segment
	File    string // hex SHA-256 of the file written
	Bytes   int64
	// HeldBack names the outbox destination that has not delivered every entry older than the
	// cutoff, if the archive stopped short for it.
	HeldBack string
}

// ErrNothingToArchive means no entry older than the cutoff ends at a signed checkpoint.
var ErrNothingToArchive = errors.New("nothing to archive")

// Archive moves the entries older than req.Before out of the live log into a new segment
// file at out, encrypted to pub: the log must verify first; the segment takes the entries
// from the end of the archived part of the log up to the last signed checkpoint such that
// every entry before it is older than Before (so the segment ends at a checkpoint), with the
// checkpoints among them; the file is written and synced before the store removes the
// entries' data (keeping their leaf hashes) in the transaction that records the archive in
// the log; then a checkpoint is signed. If the store refuses, the file is removed.
func Archive(ctx context.Context, req ArchiveRequest, out string, pub hpke.PublicKey) (res Archived, err error) {
	now := time.Now
	if req.Now != nil {
		now = req.Now
	}
	if req.Retention == (Retention{}) {
		req.Retention = DefaultRetention
	}
	if _, err := os.Stat(out); err == nil {
		return res, fmt.Errorf("%s exists: an archive never overwrites a file; choose a new name", out)
	}
	st := req.Store
	segs, err := st.AuditSegments(ctx)
	if err != nil {
		return res, err
	}
	var from uint64
	if len(segs) > 0 {
		from = segs[len(segs)-1].To
	}
	stored, err := st.AuditCheckpoints(ctx)
	if err != nil {
		return res, err
	}
	v := req.Signer.Verifier()
	rep, err := audit.VerifyEpochs(ctx, audit.StoreLog{Store: st}, audit.SignedCheckpoints(stored), req.Epochs, v, nil)
	if err != nil {
		return res, fmt.Errorf("the audit log does not verify, so nothing is archived: %w", err)
	}
	// The entries older than the cutoff, from the end of the archived part: up to the first
	// that is not (or that is no audit entry of this package).
	var entries [][]byte
	var times []time.Time
	errEnd := errors.New("end")
	err = st.AuditEntries(ctx, from, rep.Entries, func(r vitalgate.AuditRecord) error {
		e, err := audit.UnmarshalEntry(r.Data)
		if err != nil || !e.Time.Before(req.Before) {
			return errEnd
		}
		entries = append(entries, bytes.Clone(r.Data))
		times = append(times, e.Time)
		return nil
	})
	if err != nil && !errors.Is(err, errEnd) {
		return res, err
	}
	end := from + uint64(len(entries))
	// Never archive what an outbox destination has not delivered yet: it could not any more.
	cursors, err := st.OutboxCursors(ctx)
	if err != nil {
		return res, err
	}
	for dest, next := range cursors {
		if next < end && !slices.Contains(req.SkipOutbox, dest) {
			end, res.HeldBack = max(next, from), dest
		}
	}
	var cps [][]byte
	var to uint64
	for _, c := range stored {
		if c.Size > from && c.Size <= end {
			cps, to = append(cps, c.Note), c.Size
		}
	}
	if to == 0 && res.HeldBack != "" {
		return res, fmt.Errorf("%w: outbox destination %s has delivered only the entries before %d; archive when it has caught up (or, if it is no longer used, pass it to --skip-outbox)",
			ErrNothingToArchive, res.HeldBack, end)
	}
	if to == 0 {
		return res, fmt.Errorf("%w: no signed checkpoint ends the entries older than %s after entry %d (%d entries are older); sign one with `vitalgate audit checkpoint` and archive again",
			ErrNothingToArchive, req.Before.Format(time.RFC3339), from, len(entries))
	}
	entries, times = entries[:to-from], times[:to-from]
	leaves, err := audit.StoreLog{Store: st}.LeafHashes(ctx, 0, to)
	if err != nil {
		return res, err
	}
	var t audit.Tree
	for _, h := range leaves[:from] {
		t.Append(h)
	}
	prefix := t.SubtreeRoots()
	for _, h := range leaves[from:] {
		t.Append(h)
	}
	last := times[0]
	for _, x := range times {
		if x.After(last) {
			last = x
		}
	}
	rnd := make([]byte, 4)
	if _, err := rand.Read(rnd); err != nil {
		return res, err
	}
	created := now().UTC()
	seg := Segment{ID: fmt.Sprintf("as-%d-%d-%s", from, to, hex.EncodeToString(rnd)), Origin: req.Log.Origin(), From: from, To: to,
		Prefix: prefix, Root: t.Root(), Before: req.Before.UTC(), LastTime: last.UTC(), Retention: req.Retention,
		KeepUntil: req.Retention.Until(last).UTC(), Created: created}

	partial := out + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the operator names the file
	if err != nil {
		return res, err
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	seg, err = WriteSegment(w, pub, req.Signer, seg, entries, cps)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(partial, out)
	}
	if err != nil {
		_ = os.Remove(partial)
		return res, fmt.Errorf("write the segment, nothing archived: %w", err)
	}
	res = Archived{Segment: seg, File: hex.EncodeToString(h.Sum(nil)), HeldBack: res.HeldBack}
	if fi, err := os.Stat(out); err == nil {
		res.Bytes = fi.Size()
	}
	desc := fmt.Sprintf("archived entries %d to %d (older than %s, the newest of %s) into segment %s (SHA-256 %s), to be kept until %s (retention %s)",
		from, to-1, seg.Before.Format(time.RFC3339), seg.LastTime.Format(time.RFC3339), seg.ID, res.File[:16], seg.KeepUntil.Format("2006-01-02"), seg.Retention)
	e := audit.ArchiveEntry(seg.ID, from, to, desc)
	e.AgentType, e.AgentID = audit.AgentOperator, req.Operator
	rec := vitalgate.AuditSegment{ID: seg.ID, From: from, To: to, Before: seg.Before, LastTime: seg.LastTime, KeepUntil: seg.KeepUntil,
		File: res.File, CreatedAt: created}
	if err := st.ArchiveAudit(ctx, rec, leaves[from:], req.Log.Encode(ctx, e)); err != nil {
		_ = os.Remove(out)
		return res, fmt.Errorf("the store did not archive the entries (the segment file was removed): %w", err)
	}
	if _, err := req.Log.Checkpoint(ctx); err != nil {
		return res, fmt.Errorf("entries archived, but the checkpoint after it failed: %w", err)
	}
	return res, nil
}
