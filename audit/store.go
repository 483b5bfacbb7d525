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
// provers, and to EntrySource, for Verify. The store keeps no leaf hashes, so LeafHashes
// computes them from the entries, and Entries passes a zero stored leaf hash, which Verify
// takes as "none stored": every change is then caught by the checkpoints.
type StoreLog struct {
	Store AuditReader
}

// Size returns the number of entries in the log.
func (l StoreLog) Size(ctx context.Context) (uint64, error) { return l.Store.AuditSize(ctx) }

// Entries streams the entries with index >= from, in index order, with the leaf hash stored
// at append time when the store keeps one (so that a changed entry is named exactly).
func (l StoreLog) Entries(ctx context.Context, from uint64, fn func(index uint64, data []byte, storedLeafHash [HashSize]byte) error) error {
	return l.Store.AuditEntries(ctx, from, math.MaxUint64, func(r vitalgate.AuditRecord) error {
		var h [HashSize]byte
		if len(r.Hash) == HashSize {
			h = [HashSize]byte(r.Hash)
		}
		return fn(r.Index, r.Data, h)
	})
}

// EntryRange streams the entries with from <= index < to, in index order, as Entries does
// (Verify reads ranges of the log in parallel).
func (l StoreLog) EntryRange(ctx context.Context, from, to uint64, fn func(index uint64, data []byte, storedLeafHash [HashSize]byte) error) error {
	return l.Store.AuditEntries(ctx, from, to, func(r vitalgate.AuditRecord) error {
		var h [HashSize]byte
		if len(r.Hash) == HashSize {
			h = [HashSize]byte(r.Hash)
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
		out = append(out, LeafHash(r.Data))
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
