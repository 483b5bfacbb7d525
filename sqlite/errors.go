package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// mapError turns a database error into a *vitalgate.Error. It is the one place that does:
//
//	sql.ErrNoRows                      ENOTFOUND     "<what> not found"
//	primary key or unique constraint   ECONFLICT     "<what> exists already"
//	SQLITE_BUSY, SQLITE_LOCKED         EUNAVAILABLE  "database busy"
//	SQLITE_FULL, SQLITE_IOERR          EUNAVAILABLE  "storage full or failing"
//	anything else                      EINTERNAL
//
// A *vitalgate.Error and a context error are returned unchanged, so callers can test for
// context.Canceled and context.DeadlineExceeded.
func mapError(err error, what string) error {
	if vitalgate.Settled(err) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return vitalgate.NotFound(what, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code()
		switch code & 0xff { // the primary result code
		case sqlite3.SQLITE_CONSTRAINT:
			if code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || code == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
				return &vitalgate.Error{Code: vitalgate.ECONFLICT, Message: what + " exists already", Err: err}
			}
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return vitalgate.Unavailable(err, "database busy")
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			return vitalgate.Unavailable(err, "storage full or failing")
		}
	}
	return vitalgate.Internal(err, "sqlite: "+what)
}

// mapping returns mapError for what, as a function (for rowiter.Each).
func mapping(what string) func(error) error {
	return func(err error) error { return mapError(err, what) }
}

// collect returns, in row order, the values scan reads from every row that query selects, with
// what naming the rows in errors.
func collect[T any](ctx context.Context, db *DB, what string, scan func(rowiter.Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.query(ctx, query, args...) // assurance:sql-ok query is a constant at every call of collect (checked)
	if err != nil {
		return nil, mapError(err, what)
	}
	defer rows.Close()
	vs, err := rowiter.Collect(rows, scan)
	return vs, mapError(err, what)
}

// auditRecords calls fn, in row order, for each audit_log row that query selects as idx,
// data, hash, with what naming the rows in errors.
func (db *DB) auditRecords(ctx context.Context, what string, fn func(vitalgate.AuditRecord) error, query string, args ...any) error {
	rows, err := db.query(ctx, query, args...) // assurance:sql-ok query is a constant at every call of auditRecords (checked)
	if err != nil {
		return mapError(err, what)
	}
	defer rows.Close()
	return rowiter.Each(rows, rowiter.AuditRecord, mapping(what), fn)
}
