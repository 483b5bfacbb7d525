package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate/rowiter"
	"github.com/vitalgate/vitalgate/sqlstore"
)

// sharedBackend is this store as sqlstore uses it: reads and single writes on the pool,
// transactions as DB.inTx runs them.
type sharedBackend struct{ db *DB }

func (b sharedBackend) Reader() sqlstore.Reader { return pgConn{b.db.pool} }
func (b sharedBackend) Writer() sqlstore.Conn   { return pgConn{b.db.pool} }
func (b sharedBackend) Now() time.Time          { return b.db.opts.Now() }

func (sharedBackend) MapError(err error, what string) error { return mapError(err, what) }
func (sharedBackend) Time(t time.Time) any                  { return dbTime(t) }

func (b sharedBackend) InTx(ctx context.Context, audit [][]byte, fn func(tx sqlstore.Conn) error) error {
	return b.db.inTx(ctx, audit, func(tx pgx.Tx) error { return fn(pgConn{tx}) })
}

// pgConn is the pool or a transaction as sqlstore uses it. Its callers in sqlstore pass only
// that package's SQL constants (checked there).
type pgConn struct{ q querier }

func (c pgConn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := c.q.Exec(ctx, query, args...) // assurance:sql-ok passed through from sqlstore, whose calls are checked
	return tag.RowsAffected(), err
}

func (c pgConn) QueryRow(ctx context.Context, query string, args ...any) rowiter.Scanner {
	return c.q.QueryRow(ctx, query, args...) // assurance:sql-ok passed through from sqlstore, whose calls are checked
}

func (c pgConn) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return c.q.Query(ctx, query, args...) // assurance:sql-ok passed through from sqlstore, whose calls are checked
}
