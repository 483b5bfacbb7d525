// Package sqlstore is what the two SQL stores, sqlite and postgres, do the same way, written
// once: statements both dialects accept (numbered parameters, $1, which SQLite binds by
// number as PostgreSQL does), the reads and writes over them, and the scanning of their rows.
// Each store adapts its driver to Backend and embeds Shared, whose methods then are the
// store's own. What a dialect or a driver does differently stays in the store's package:
// transactions and locking, the group commit, migrations, time columns (SQLite keeps
// INTEGER microseconds, PostgreSQL timestamptz; Backend.Time binds them, a time scanned here
// reads both).
//
// Like the stores, this package holds persistence only: no rule of a capability, and SQL
// only as this package's constants (assurance/sql_test.go checks it as it checks the stores).
package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

// Reader is a store's read connections as the shared code uses them. query is one of this
// package's SQL constants at every call.
type Reader interface {
	// QueryRow runs a query of one row; its error, sql.ErrNoRows when there is no row,
	// comes back through Scan.
	QueryRow(ctx context.Context, query string, args ...any) rowiter.Scanner
	// Query runs a query of many rows; the caller closes them.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Conn is a store's connection or transaction as the shared code uses it: a Reader that
// also writes.
type Conn interface {
	Reader
	// Exec runs a statement and returns how many rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
}

// Rows is a result set the caller closes.
type Rows interface {
	rowiter.Rows
	// Close releases the rows.
	Close()
}

// Backend is what a store gives the shared code.
type Backend interface {
	// Reader is the connections reads go through.
	Reader() Reader
	// Writer is the connection single writes outside a transaction go through.
	Writer() Conn
	// InTx runs fn in one transaction, appends the audit entries in it, and commits: both or
	// neither. An error from fn rolls back and is returned as it is. The entries are
	// checked (vitalgate.CheckAuditEntries) before anything is written.
	InTx(ctx context.Context, audit [][]byte, fn func(tx Conn) error) error
	// MapError turns a driver error into a vitalgate.Error naming what (nil stays nil;
	// sql.ErrNoRows is ENOTFOUND).
	MapError(err error, what string) error
	// Time is t as the parameter of a time column: NULL for the zero time.
	Time(t time.Time) any
	// Now is the store's clock.
	Now() time.Time
}

// Shared holds the methods both stores share. A store embeds it, made by New.
type Shared struct {
	b Backend
}

// New returns the shared methods over b.
func New(b Backend) Shared { return Shared{b: b} }

// orNow returns t, or the store's now if t is zero.
func (s Shared) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return s.b.Now()
	}
	return t
}

// collect returns, in row order, the values scan reads from every row that query selects on
// the reader, with what naming the rows in errors.
func collect[T any](ctx context.Context, s Shared, what string, scan func(rowiter.Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.b.Reader().Query(ctx, query, args...) // assurance:sql-ok query is a constant at every call of collect (checked)
	if err != nil {
		return nil, s.b.MapError(err, what)
	}
	defer rows.Close()
	vs, err := rowiter.Collect(rows, scan)
	return vs, s.b.MapError(err, what)
}

// get returns the value scan reads from the one row that query selects on the reader:
// ENOTFOUND naming what when there is none.
func get[T any](ctx context.Context, s Shared, what string, scan func(rowiter.Scanner) (T, error), query string, args ...any) (T, error) {
	v, err := scan(s.b.Reader().QueryRow(ctx, query, args...)) // assurance:sql-ok query is a constant at every call of get (checked)
	if err != nil {
		var zero T
		return zero, s.b.MapError(err, what)
	}
	return v, nil
}

// Time scans a nullable time column of either store into T: SQLite's INTEGER microseconds
// since the Unix epoch and PostgreSQL's timestamptz alike, in UTC; NULL is the zero time.
type Time struct {
	T time.Time
}

// Scan implements sql.Scanner (pgx calls it too, with a time.Time for timestamptz).
func (t *Time) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		t.T = time.Time{}
	case int64:
		t.T = time.UnixMicro(v).UTC()
	case time.Time:
		t.T = v.UTC()
	default:
		return fmt.Errorf("sqlstore: a time column holds a %T", v)
	}
	return nil
}

// conditional runs update (a statement changing one row, id, when it is in the state the
// change starts from) on tx: no row changed is ENOTFOUND when exists (a constant selecting
// whether row id exists) finds none, ECONFLICT when it does.
func (s Shared) conditional(ctx context.Context, tx Conn, what, exists, id string, update func() (int64, error)) error {
	n, err := update()
	if err != nil {
		return s.b.MapError(err, what)
	}
	if n > 0 {
		return nil
	}
	var found bool
	// assurance:sql-ok exists is alertExistsSQL, deviceExistsSQL or userExistsSQL, constants
	if err := tx.QueryRow(ctx, exists, id).Scan(&found); err != nil {
		return s.b.MapError(err, what)
	}
	if !found {
		return vitalgate.NotFound(what, nil)
	}
	return vitalgate.Errorf(vitalgate.ECONFLICT, "the %s is not in the state this change starts from", what)
}

// What a store embedding Shared provides through it.
var (
	_ vitalgate.AlertStore      = Shared{}
	_ vitalgate.QuarantineStore = Shared{}
	_ vitalgate.RolloutStore    = Shared{}
	_ vitalgate.NodeConfigStore = Shared{}
)
