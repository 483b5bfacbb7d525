package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

// PostgreSQL error codes (SQLSTATE) that mapError distinguishes.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
	codeLockNotAvailable    = "55P03"
	codeQueryCanceled       = "57014" // statement_timeout, or pg_cancel_backend
	codeAdminShutdown       = "57P01" // pg_terminate_backend, or a fast shutdown
	codeCrashShutdown       = "57P02"
	codeCannotConnectNow    = "57P03" // starting up or shutting down
	codeDatabaseDropped     = "57P04"
	codeIdleSessionTimeout  = "57P05"
	codeReadOnlyTx          = "25006" // a hot standby after a failover
)

// patientIdentifierConstraint is the unique index that keeps a Patient identifier to one
// Patient (migrations/0004_resource_identifiers.sql).
const patientIdentifierConstraint = "resource_identifiers_patient_unique"

// mapError turns a database error into a *vitalgate.Error. It is the one place that does:
//
//	pgx.ErrNoRows                                    ENOTFOUND     "<what> not found"
//	23505 unique_violation                           ECONFLICT     "<what> exists already"
//	  (of resource_identifiers_patient_unique)                     "Patient identifier exists already"
//	23503 foreign_key_violation                      ENOTFOUND     "<what> refers to a missing record"
//	08xxx connection exception, 53xxx insufficient
//	resources (53100 disk full, 53200 out of memory,
//	53300 too many connections), 57P0x shutdown and
//	terminated sessions, 57014 statement timeout,
//	40001 serialization failure, 40P01 deadlock,
//	55P03 lock not available, 25006 read-only
//	(standby), network errors, timeouts, a closed
//	connection or pool                               EUNAVAILABLE  "database unavailable"
//	anything else                                    EINTERNAL
//
// A *vitalgate.Error and a context error of the caller's are returned unchanged, so callers
// can test for context.Canceled and context.DeadlineExceeded.
func mapError(err error, what string) error {
	if vitalgate.Settled(err) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return vitalgate.NotFound(what, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == codeUniqueViolation && pe.ConstraintName == patientIdentifierConstraint:
			return &vitalgate.Error{Code: vitalgate.ECONFLICT, Message: "Patient identifier exists already", Err: err}
		case pe.Code == codeUniqueViolation:
			return &vitalgate.Error{Code: vitalgate.ECONFLICT, Message: what + " exists already", Err: err}
		case pe.Code == codeForeignKeyViolation:
			return &vitalgate.Error{Code: vitalgate.ENOTFOUND, Message: what + " refers to a missing record", Err: err}
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"):
			return unavailable(err)
		}
		switch pe.Code {
		case codeSerialization, codeDeadlock, codeLockNotAvailable, codeQueryCanceled,
			codeAdminShutdown, codeCrashShutdown, codeCannotConnectNow, codeDatabaseDropped,
			codeIdleSessionTimeout, codeReadOnlyTx:
			return unavailable(err)
		}
		return vitalgate.Internal(err, "postgres: "+what)
	}
	if connectionError(err) {
		return unavailable(err)
	}
	return vitalgate.Internal(err, "postgres: "+what)
}

// unavailable wraps a transient fault.
func unavailable(err error) error {
	return vitalgate.Unavailable(err, "database unavailable")
}

// connectionError reports whether err (not a server error) means the server could not be
// reached or the connection broke: the request may succeed on another connection later.
func connectionError(err error) bool {
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, puddle.ErrClosedPool), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// mapping returns mapError for what, as a function (for rowiter.Each).
func mapping(what string) func(error) error {
	return func(err error) error { return mapError(err, what) }
}

// collect returns, in row order, the values scan reads from every row that query selects, with
// what naming the rows in errors.
func collect[T any](ctx context.Context, db *DB, what string, scan func(rowiter.Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.pool.Query(ctx, query, args...) // assurance:sql-ok query is a constant at every call of collect (checked)
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
	rows, err := db.pool.Query(ctx, query, args...) // assurance:sql-ok query is a constant at every call of auditRecords (checked)
	if err != nil {
		return mapError(err, what)
	}
	defer rows.Close()
	return rowiter.Each(rows, rowiter.AuditRecord, mapping(what), fn)
}
