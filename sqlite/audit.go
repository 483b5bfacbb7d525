package sqlite

import (
	"context"
	"database/sql"

	"github.com/vitalgate/vitalgate"
)

// Audit log SQL. An entry's index is computed in the INSERT itself as max(idx) + 1: idx is
// the rowid, so max(idx) is a single seek to the end of the table's b-tree, and because every
// write runs in a transaction that holds SQLite's write lock (BEGIN IMMEDIATE), the indexes are
// dense and follow commit order even with several processes writing the same file. Nothing is
// cached in memory, so a rolled-back savepoint or a failed commit leaves nothing to resync.
//
// Measured (50k inserts into a log of up to 800k entries): the subquery costs about as much
// as binding an index kept in Go (~8 µs per entry either way, flat in the log's size), whereas
// RETURNING idx read through QueryRow cost 3 times as much; the index of the first entry is
// therefore read with LastInsertId (idx is the rowid).
const (
	insertAuditSQL = `INSERT INTO audit_log (idx, data, hash)
	VALUES ((SELECT coalesce(max(idx) + 1, 0) FROM audit_log), ?, ?)`
	auditSizeSQL    = `SELECT coalesce(max(idx) + 1, 0) FROM audit_log`
	auditEntriesSQL = `SELECT idx, data, hash FROM audit_log WHERE idx >= ? AND idx < ? ORDER BY idx`
)

// appendAudit appends entries within the caller's transaction, using ins (insertAuditSQL
// bound to that transaction), and returns the index of the first. With no entries it does
// nothing and returns 0.
func appendAudit(ctx context.Context, ins *sql.Stmt, entries [][]byte) (uint64, error) {
	var first uint64
	for i, e := range entries {
		h := vitalgate.AuditLeafHash(e)
		res, err := ins.ExecContext(ctx, e, h[:])
		if err != nil {
			return 0, mapError(err, "audit entry")
		}
		if i == 0 {
			idx, err := res.LastInsertId() // idx is the rowid
			if err != nil {
				return 0, mapError(err, "audit entry")
			}
			first = uint64(idx) // #nosec G115 -- idx is an audit_log rowid, non-negative by the column's CHECK (idx >= 0)
		}
	}
	return first, nil
}

// appendAuditTx appends entries within tx with the prepared insert statement.
func (db *DB) appendAuditTx(ctx context.Context, tx *sql.Tx, entries [][]byte) error {
	if len(entries) == 0 {
		return nil
	}
	_, err := appendAudit(ctx, tx.StmtContext(ctx, db.insertAudit), entries)
	return err
}

// AppendAudit appends entries in one transaction and returns the index of the first. It
// shares group commit with CreateResources: concurrent appends and resource batches are
// committed together (one fsync), each caller under its own savepoint, and the call returns
// once the entries are durable. With no entries it writes nothing and returns the current
// size of the log (the index the next entry will get).
//
// If ctx is done before the writer takes the entries, AppendAudit returns ctx.Err() and
// nothing is appended. Returns EINVALID for an empty entry, EUNAVAILABLE when the database is
// busy, full or closed.
func (db *DB) AppendAudit(ctx context.Context, entries ...[]byte) (uint64, error) {
	if len(entries) == 0 {
		return db.AuditSize(ctx)
	}
	if err := vitalgate.CheckAuditEntries(entries); err != nil {
		return 0, err
	}
	return db.submit(ctx, nil, entries)
}

// AuditSize returns the number of entries in the log: its indexes are dense from 0, so this is
// max(idx) + 1, which costs one index seek rather than a count.
func (db *DB) AuditSize(ctx context.Context) (uint64, error) {
	var n int64
	if err := db.queryRow(ctx, auditSizeSQL).Scan(&n); err != nil {
		return 0, mapError(err, "audit log")
	}
	return uint64(n), nil // #nosec G115 -- n is coalesce(max(idx) + 1, 0) over audit_log, whose CHECK (idx >= 0) makes it non-negative
}

// AuditEntries calls fn for the entries with from <= Index < to, in index order, stopping at
// the first error fn returns and returning it unchanged. Entries are streamed from one read
// snapshot; fn may call the store (reads use their own connections) but holds a read
// connection while it runs. A to beyond the end of the log (math.MaxUint64, say) means "to the
// end".
func (db *DB) AuditEntries(ctx context.Context, from, to uint64, fn func(vitalgate.AuditRecord) error) error {
	lo, hi, ok := vitalgate.AuditRange(from, to)
	if !ok {
		return nil
	}
	return db.auditRecords(ctx, "audit log", fn, auditEntriesSQL, lo, hi)
}

// Audit search SQL (audit_index, migration 0008). Each query leads with one indexed field
// and filters the others as residuals; a unary + keeps SQLite from choosing another index
// for a residual. ?1..?6 are the patient index, agent id, action, outcome (” for any) and
// the time bounds in vitalgate.AuditIndexTime form; ?7 is the limit, ?8 the site (” for any,
// migration 0009).
const (
	auditSearchSelect = `SELECT l.idx, l.data, l.hash FROM audit_index i JOIN audit_log l ON l.idx = i.idx WHERE `
	auditSearchRest   = ` AND (?1 = '' OR +i.patient_index = ?1) AND (?2 = '' OR +i.agent_id = ?2)
	AND (?3 = '' OR +i.action = ?3) AND (?4 = '' OR +i.outcome = ?4) AND +i.time >= ?5 AND +i.time < ?6
	AND (?8 = '' OR +i.site = ?8)`
)

// auditSearchQueries holds the audit search query for each vitalgate.AuditLead.
var auditSearchQueries = [...]string{
	vitalgate.AuditLeadAll:     auditSearchSelect + `1` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT ?7`,
	vitalgate.AuditLeadPatient: auditSearchSelect + `i.patient_index = ?1` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT ?7`,
	vitalgate.AuditLeadAgent:   auditSearchSelect + `i.agent_id = ?2` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT ?7`,
	vitalgate.AuditLeadOutcome: auditSearchSelect + `i.outcome = ?4` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT ?7`,
	vitalgate.AuditLeadAction:  auditSearchSelect + `i.action = ?3` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT ?7`,
	vitalgate.AuditLeadTime:    auditSearchSelect + `i.time >= ?5 AND i.time < ?6` + auditSearchRest + ` ORDER BY i.time DESC, i.idx DESC LIMIT ?7`,
	vitalgate.AuditLeadSite:    auditSearchSelect + `i.site = ?8` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT ?7`,
}

// AuditSearch calls fn for the entries that match q, newest first, at most q.Limit, through
// audit_index: the query leads with the patient, else the agent, the outcome, the action,
// the time range, in that order, so that it reads the matching part of one index. With only
// a time range, newest means latest time. Returns EINVALID for a limit outside
// 1..vitalgate.MaxAuditSearch.
func (db *DB) AuditSearch(ctx context.Context, q vitalgate.AuditQuery, fn func(vitalgate.AuditRecord) error) error {
	lead, args, err := q.Plan()
	if err != nil {
		return err
	}
	// assurance:sql-ok auditSearchQueries is an array of this package's SQL constants
	return db.auditRecords(ctx, "audit search", fn, auditSearchQueries[lead], args...)
}
