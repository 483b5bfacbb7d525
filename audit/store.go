package audit

import (
	"context"
	"math"
	"strconv"

	"github.com/vitalgate/vitalgate"
)

// AuditReader is the part of vitalgate.AuditStore that reading the log needs.
type AuditReader interface {
	// AuditSize returns the number of entries in the log.
	AuditSize(ctx context.Context) (uint64, error)
	// AuditEntries calls fn for the entries with from <= Index < to, in index order.
	AuditEntries(ctx context.Context, from, to uint64, fn func(vitalgate.AuditRecord) error) error
}

// StoreLog adapts a store's audit log (a vitalgate.AuditStore) to LeafSource, for the
// provers, and to EntrySource, for Verify. LeafHashes computes the leaf hashes from the
// entries (an archived entry's is the one stored: its data is in an archive segment), and
// Entries passes the stored leaf hash, all zero when the store keeps none, which Verify takes
// as "none stored": every change is then caught by the checkpoints. An archived entry is
// passed with nil data and its stored leaf hash.
type StoreLog struct {
	Store AuditReader
}

// Size returns the number of entries in the log.
func (l StoreLog) Size(ctx context.Context) (uint64, error) { return l.Store.AuditSize(ctx) }

// Entries streams the entries with index >= from, in index order, with the leaf hash stored
// at append time when the store keeps one (so that a changed entry is named exactly).
func (l StoreLog) Entries(ctx context.Context, from uint64, fn func(index uint64, data []byte, storedLeafHash [HashSize]byte) error) error {
	return l.EntryRange(ctx, from, math.MaxUint64, fn)
}

// EntryRange streams the entries with from <= index < to, in index order, as Entries does
// (Verify reads ranges of the log in parallel).
func (l StoreLog) EntryRange(ctx context.Context, from, to uint64, fn func(index uint64, data []byte, storedLeafHash [HashSize]byte) error) error {
	return l.Store.AuditEntries(ctx, from, to, func(r vitalgate.AuditRecord) error {
		var h [HashSize]byte
		if len(r.Hash) == HashSize {
			h = [HashSize]byte(r.Hash)
		}
		if r.Archived() {
			return fn(r.Index, nil, h)
		}
		return fn(r.Index, r.Data, h)
	})
}

// LeafHashes returns the leaf hashes of entries [from, to), computed from the stored entries.
// It returns fewer than to-from hashes if the log is shorter, which the provers report.
func (l StoreLog) LeafHashes(ctx context.Context, from, to uint64) ([][HashSize]byte, error) {
	out := make([][HashSize]byte, 0, min(to-from, 1<<16))
	err := l.Store.AuditEntries(ctx, from, to, func(r vitalgate.AuditRecord) error {
		if r.Index != from+uint64(len(out)) {
			return vitalgate.Errorf(vitalgate.EINTERNAL, "audit log entry %d out of sequence", r.Index)
		}
		h, err := RecordLeaf(r)
		if err != nil {
			return err
		}
		out = append(out, h)
		return nil
	})
	return out, err
}

// SignedCheckpoints converts stored checkpoints (ascending size order, as
// vitalgate.AuditStore returns them) for Verify, naming each by its size.
func SignedCheckpoints(cps []vitalgate.AuditCheckpoint) []SignedCheckpoint {
	out := make([]SignedCheckpoint, len(cps))
	for i, c := range cps {
		out[i] = SignedCheckpoint{Note: c.Note, Source: "stored checkpoint at size " + strconv.FormatUint(c.Size, 10)}
	}
	return out
}

// RecordLeaf returns the leaf hash of a stored entry: computed from its data, or for an
// archived entry (vitalgate.AuditRecord.Archived), the leaf hash the store kept.
func RecordLeaf(r vitalgate.AuditRecord) ([HashSize]byte, error) {
	if !r.Archived() {
		return LeafHash(r.Data), nil
	}
	if len(r.Hash) != HashSize {
		return [HashSize]byte{}, vitalgate.Errorf(vitalgate.EINTERNAL, "audit log entry %d has neither data nor a leaf hash", r.Index)
	}
	return [HashSize]byte(r.Hash), nil
}
