package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
	"github.com/vitalgate/vitalgate/sqlstore"
)

// sharedBackend is this store as sqlstore uses it: reads through the prepared statements of
// the read pool, writes on the single write connection, transactions IMMEDIATE on it.
type sharedBackend struct{ db *DB }

func (b sharedBackend) Reader() sqlstore.Reader { return readConn(b) }
func (b sharedBackend) Writer() sqlstore.Conn   { return sqlConn{b.db.w} }
func (b sharedBackend) Now() time.Time          { return b.db.opts.Now() }

func (sharedBackend) MapError(err error, what string) error { return mapError(err, what) }
func (sharedBackend) Time(t time.Time) any                  { return dbTime(t) }

func (b sharedBackend) InTx(ctx context.Context, audit [][]byte, fn func(tx sqlstore.Conn) error) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return b.db.inTx(ctx, func(tx *sql.Tx) error {
		if err := fn(sqlConn{tx}); err != nil {
			return err
		}
		return b.db.appendAuditTx(ctx, tx, audit)
	})
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// sqlConn is a connection or a transaction as sqlstore uses it. Its callers in sqlstore pass
// only that package's SQL constants (checked there).
type sqlConn struct{ q querier }

func (c sqlConn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.q.ExecContext(ctx, query, args...) // assurance:sql-ok passed through from sqlstore, whose calls are checked
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c sqlConn) QueryRow(ctx context.Context, query string, args ...any) rowiter.Scanner {
	return c.q.QueryRowContext(ctx, query, args...) // assurance:sql-ok passed through from sqlstore, whose calls are checked
}

func (c sqlConn) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return closing(c.q.QueryContext(ctx, query, args...)) // assurance:sql-ok passed through from sqlstore, whose calls are checked
}

// readConn reads through the read pool's prepared statements (DB.read).
type readConn struct{ db *DB }

func (c readConn) QueryRow(ctx context.Context, query string, args ...any) rowiter.Scanner {
	return c.db.queryRow(ctx, query, args...) // assurance:sql-ok passed through from sqlstore, whose calls are checked
}

func (c readConn) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return closing(c.db.query(ctx, query, args...)) // assurance:sql-ok passed through from sqlstore, whose calls are checked
}

// closingRows is *sql.Rows with the Close sqlstore.Rows has (the error of closing rows read
// to the end is the error Err already gave).
type closingRows struct{ *sql.Rows }

func (r closingRows) Close() { _ = r.Rows.Close() }

// closing returns a query's rows as sqlstore.Rows.
func closing(rows *sql.Rows, err error) (sqlstore.Rows, error) {
	if err != nil {
		return nil, err
	}
	return closingRows{rows}, nil
}
