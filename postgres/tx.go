package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vitalgate/vitalgate"
)

// querier is what pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const (
	// appendAuditSQL appends the entries $1 (bytea[]) with their leaf hashes $2 (bytea[]) in
	// one statement: it takes the audit_head row lock, held until commit, and returns the
	// index of the first entry. The CTE that inserts runs to completion even though the
	// final SELECT does not read it.
	appendAuditSQL = `WITH head AS (
	UPDATE audit_head SET size = size + cardinality($1::bytea[]) RETURNING size - cardinality($1::bytea[]) AS first
), appended AS (
	INSERT INTO audit_log (idx, data, hash)
	SELECT head.first + e.ord - 1, e.data, e.hash
	FROM head, unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS e(data, hash, ord)
)
SELECT first FROM head`
)

// auditArgs returns the parameters of appendAuditSQL: the entries and their RFC 6962 leaf
// hashes (vitalgate.AuditLeafHash).
func auditArgs(entries [][]byte) (data, hashes [][]byte) {
	hashes = make([][]byte, len(entries))
	for i, e := range entries {
		h := vitalgate.AuditLeafHash(e)
		hashes[i] = h[:]
	}
	return entries, hashes
}

// appendAudit appends entries in tx and returns the first one's index. It must be the last
// statement of the transaction before the commit: from here on the transaction holds the
// lock that every other appender waits for.
func appendAudit(ctx context.Context, q querier, entries [][]byte) (uint64, error) {
	var first int64
	data, hashes := auditArgs(entries)
	if err := q.QueryRow(ctx, appendAuditSQL, data, hashes).Scan(&first); err != nil {
		return 0, mapError(err, "audit entry")
	}
	return uint64(first), nil // #nosec G115 -- first is the old audit_head.size, non-negative by the column's CHECK (size >= 0)
}

// inTx runs fn in a transaction, appends the audit entries in the same transaction, and
// commits if both succeed. An error from fn is returned unchanged (after the rollback).
func (db *DB) inTx(ctx context.Context, audit [][]byte, fn func(tx pgx.Tx) error) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return mapError(err, "begin")
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	if len(audit) > 0 {
		if _, err := appendAudit(ctx, tx, audit); err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return mapError(err, "commit")
	}
	return nil
}

// notFound returns an ENOTFOUND error saying what was not found.
func notFound(what string) error {
	return vitalgate.Errorf(vitalgate.ENOTFOUND, "%s not found", what)
}
