package vitalgate

import (
	"context"
	"crypto/sha256"
	"time"
)

// AuditRecord is one stored entry of the tamper-evident audit log.
type AuditRecord struct {
	// Index is the entry's position in the log, from 0, assigned by the store at commit:
	// indexes are dense (no gaps) and follow commit order, whatever the number of writers.
	Index uint64
	// Data is the entry's canonical encoding (package audit). It carries no clinical values.
	Data []byte
	// Hash is the entry's RFC 6962 leaf hash as stored when it was appended (AuditLeafHash
	// of Data), or nil if the store keeps none. Verification recomputes it from Data and
	// names the first entry whose stored hash no longer matches.
	Hash []byte
}

// AuditLeafHash is the RFC 6962 leaf hash of an audit entry: SHA-256(0x00 || data).
func AuditLeafHash(data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	return [32]byte(h.Sum(nil))
}

// AuditCheckpoint is a signed checkpoint of the audit log (C2SP signed-note format).
type AuditCheckpoint struct {
	Size      uint64 // number of entries the checkpoint commits to
	Note      []byte // the signed note
	CreatedAt time.Time
}

// AuditStore persists the audit log. Entries are appended by the store's other write
// methods, in the same transaction as the write they describe (their trailing audit
// arguments), or alone with AppendAudit.
type AuditStore interface {
	// AppendAudit appends entries in one transaction and returns the index of the first.
	// Returns EUNAVAILABLE when the store is busy or full.
	AppendAudit(ctx context.Context, entries ...[]byte) (uint64, error)
	// AuditSize returns the number of entries in the log.
	AuditSize(ctx context.Context) (uint64, error)
	// AuditEntries calls fn for the entries with from <= Index < to, in index order,
	// stopping at the first error fn returns.
	AuditEntries(ctx context.Context, from, to uint64, fn func(AuditRecord) error) error
	// AddAuditCheckpoint stores a signed checkpoint. A checkpoint for a size that has one
	// already is ignored (several nodes may sign the same size).
	AddAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// AuditCheckpoints returns every stored checkpoint in ascending size order.
	AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)
}
