package postgres

import (
	"context"

	"github.com/vitalgate/vitalgate"
)

const (
	auditSizeSQL    = `SELECT size FROM audit_head`
	auditEntriesSQL = `SELECT idx, data, hash FROM audit_log WHERE idx >= $1 AND idx < $2 ORDER BY idx`
)

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
	if err := vitalgate.CheckAuditEntries(entries); err != nil {
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
	lo, hi, ok := vitalgate.AuditRange(from, to)
	if !ok {
		return nil
	}
	return db.auditRecords(ctx, "audit log", fn, auditEntriesSQL, lo, hi)
}

// Audit search SQL (audit_index, migration 0005). Each query leads with one indexed field and
// filters the others as residuals. $1..$6 are the patient index, agent id, action, outcome
// (” for any) and the time bounds in vitalgate.AuditIndexTime form; $7 is the limit.
const (
	auditSearchSelect = `SELECT l.idx, l.data, l.hash FROM audit_index i JOIN audit_log l ON l.idx = i.idx WHERE `
	auditSearchRest   = ` AND ($1 = '' OR i.patient_index = $1) AND ($2 = '' OR i.agent_id = $2)
	AND ($3 = '' OR i.action = $3) AND ($4 = '' OR i.outcome = $4) AND i.time >= $5 AND i.time < $6
	AND ($8 = '' OR i.site = $8)`
)

// auditSearchQueries holds the audit search query for each vitalgate.AuditLead.
var auditSearchQueries = [...]string{
	vitalgate.AuditLeadAll:     auditSearchSelect + `true` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT $7`,
	vitalgate.AuditLeadPatient: auditSearchSelect + `i.patient_index = $1` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT $7`,
	vitalgate.AuditLeadAgent:   auditSearchSelect + `i.agent_id = $2` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT $7`,
	vitalgate.AuditLeadOutcome: auditSearchSelect + `i.outcome = $4` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT $7`,
	vitalgate.AuditLeadAction:  auditSearchSelect + `i.action = $3` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT $7`,
	vitalgate.AuditLeadTime:    auditSearchSelect + `i.time >= $5 AND i.time < $6` + auditSearchRest + ` ORDER BY i.time DESC, i.idx DESC LIMIT $7`,
	vitalgate.AuditLeadSite:    auditSearchSelect + `i.site = $8` + auditSearchRest + ` ORDER BY i.idx DESC LIMIT $7`,
}

// AuditSearch calls fn for the entries that match q, newest first, at most q.Limit, through
// audit_index: the query leads with the patient, else the agent, the outcome, the action,
// the time range, in that order. With only a time range, newest means latest time. Returns
// EINVALID for a limit outside 1..vitalgate.MaxAuditSearch.
func (db *DB) AuditSearch(ctx context.Context, q vitalgate.AuditQuery, fn func(vitalgate.AuditRecord) error) error {
	lead, args, err := q.Plan()
	if err != nil {
		return err
	}
	// assurance:sql-ok auditSearchQueries is an array of this package's SQL constants
	return db.auditRecords(ctx, "audit search", fn, auditSearchQueries[lead], args...)
}
