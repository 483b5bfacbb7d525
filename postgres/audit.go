package postgres

import (
	"context"
	"math"
	"time"

	"github.com/vitalgate/vitalgate"
)

const (
	auditSizeSQL    = `SELECT size FROM audit_head`
	auditEntriesSQL = `SELECT idx, data, hash FROM audit_log WHERE idx >= $1 AND idx < $2 ORDER BY idx`

	insertCheckpointSQL = `INSERT INTO audit_checkpoints (size, note, created_at) VALUES ($1, $2, $3)
	ON CONFLICT (size) DO NOTHING`
	selectCheckpointsSQL = `SELECT size, note, created_at FROM audit_checkpoints ORDER BY size`
)

// checkAudit rejects audit entries that cannot be stored: an audit entry is a canonical
// encoding and never empty. Write methods check their entries before writing anything, so
// that an unusable entry fails the write rather than leaving it unaudited.
func checkAudit(entries [][]byte) error {
	for _, e := range entries {
		if len(e) == 0 {
			return vitalgate.Errorf(vitalgate.EINVALID, "audit entry is empty")
		}
	}
	return nil
}

// AppendAudit appends entries in one transaction and returns the index of the first. It
// shares group commit with CreateResources: concurrent calls on one DB are committed together,
// in one transaction that takes the audit_head row lock once. Appenders on every node are
// serialized by that lock, so indexes are dense and follow commit order. With no entries it
// writes nothing and returns the current size of the log (the index the next entry will get).
//
// If ctx is done before the writer takes the entries, AppendAudit returns ctx.Err() and
// nothing is appended. Returns EINVALID for an empty entry, EUNAVAILABLE when the database is
// unreachable, busy, full or closed.
func (db *DB) AppendAudit(ctx context.Context, entries ...[]byte) (uint64, error) {
	if len(entries) == 0 {
		return db.AuditSize(ctx)
	}
	if err := checkAudit(entries); err != nil {
		return 0, err
	}
	return db.submit(ctx, nil, entries)
}

// AuditSize returns the number of entries in the log: the committed size in audit_head.
func (db *DB) AuditSize(ctx context.Context) (uint64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, auditSizeSQL).Scan(&n); err != nil {
		return 0, mapError(err, "audit log")
	}
	return uint64(n), nil // #nosec G115 -- n is audit_head.size, non-negative by the column's CHECK (size >= 0)
}

// AuditEntries calls fn for the entries with from <= Index < to, in index order, with the
// leaf hash stored when each was appended, stopping at the first error fn returns and
// returning it unchanged. Entries are streamed from one
// statement's snapshot; fn may call the store (it gets another connection). A to beyond the
// end of the log (math.MaxUint64, say) means "to the end".
func (db *DB) AuditEntries(ctx context.Context, from, to uint64, fn func(vitalgate.AuditRecord) error) error {
	// Indexes are stored as bigint; nothing can exist beyond MaxInt64.
	to = min(to, math.MaxInt64)
	if from >= to {
		return nil
	}
	rows, err := db.pool.Query(ctx, auditEntriesSQL, int64(from), int64(to)) // #nosec G115 -- from < to <= math.MaxInt64, just above
	if err != nil {
		return mapError(err, "audit log")
	}
	defer rows.Close()
	for rows.Next() {
		var (
			idx int64
			rec vitalgate.AuditRecord
		)
		if err := rows.Scan(&idx, &rec.Data, &rec.Hash); err != nil {
			return mapError(err, "audit log")
		}
		rec.Index = uint64(idx) // #nosec G115 -- the query selects idx >= from, and from >= 0
		if err := fn(rec); err != nil {
			return err
		}
	}
	return mapError(rows.Err(), "audit log")
}

// AddAuditCheckpoint stores a signed checkpoint. A checkpoint for a size that has one already
// is ignored: the first one stored is kept, whichever node stored it. A zero CreatedAt is set
// to the current time. Returns EINVALID for an empty note or a size beyond what the log can
// hold.
func (db *DB) AddAuditCheckpoint(ctx context.Context, c vitalgate.AuditCheckpoint) error {
	if len(c.Note) == 0 {
		return vitalgate.Errorf(vitalgate.EINVALID, "audit checkpoint note is empty")
	}
	if c.Size > math.MaxInt64 {
		return vitalgate.Errorf(vitalgate.EINVALID, "audit checkpoint size out of range")
	}
	_, err := db.pool.Exec(ctx, insertCheckpointSQL, int64(c.Size), c.Note, dbTime(db.orNow(c.CreatedAt)))
	return mapError(err, "audit checkpoint")
}

// AuditCheckpoints returns every stored checkpoint in ascending size order.
func (db *DB) AuditCheckpoints(ctx context.Context) ([]vitalgate.AuditCheckpoint, error) {
	rows, err := db.pool.Query(ctx, selectCheckpointsSQL)
	if err != nil {
		return nil, mapError(err, "audit checkpoints")
	}
	defer rows.Close()
	var cs []vitalgate.AuditCheckpoint
	for rows.Next() {
		var (
			c       vitalgate.AuditCheckpoint
			size    int64
			created *time.Time
		)
		if err := rows.Scan(&size, &c.Note, &created); err != nil {
			return nil, mapError(err, "audit checkpoints")
		}
		c.Size, c.CreatedAt = uint64(size), goTime(created) // #nosec G115 -- size is non-negative by the column's CHECK (size >= 0)
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err, "audit checkpoints")
	}
	return cs, nil
}
