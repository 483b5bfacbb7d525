package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/vitalgate/vitalgate"
)

// rawTable is the batch baseline: the physical limit of the store under the same durability.
// It inserts rows with the same columns and the same sealed bytes as the resources table,
// through the same driver, into a table with only a primary key (no secondary index, no
// code or identifier rows, no audit entry, no group commit), one transaction per call.
type rawTable interface {
	name() string
	insert(ctx context.Context, rs []vitalgate.SealedResource) error
	close()
}

const (
	rawSQLiteCreateSQL = `CREATE TABLE raw_rows (
	type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, patient_index BLOB,
	effective INTEGER, last_updated INTEGER, body BLOB NOT NULL, PRIMARY KEY (type, id)) STRICT`
	rawSQLiteInsertSQL = `INSERT INTO raw_rows (type, id, version, patient_index, effective, last_updated, body)
	VALUES (?, ?, ?, ?, ?, ?, ?)`
	rawPostgresCreateSQL = `CREATE TABLE raw_rows (
	type text NOT NULL, id text NOT NULL, version bigint NOT NULL, patient_index bytea,
	effective timestamptz, last_updated timestamptz, body bytea NOT NULL, PRIMARY KEY (type, id))`
	// The same statement form as the PostgreSQL store's insert of a batch.
	rawPostgresInsertSQL = `INSERT INTO raw_rows (type, id, version, patient_index, effective, last_updated, body)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::timestamptz[], $6::timestamptz[], $7::bytea[])`
)

// rawTable opens the batch baseline of srv's store: for SQLite a database file of its own
// beside the run's data dirs with the store's settings (WAL, synchronous=FULL, one writer,
// immediate transactions); for PostgreSQL a table in srv's schema, through pgxpool with the
// same DSN (synchronous_commit as the server has it).
func (b *benchRun) rawTable(ctx context.Context, srv *benchServer) (rawTable, error) {
	if srv.store.Driver == "postgres" {
		cfg, err := pgxpool.ParseConfig(srv.store.DSN)
		if err != nil {
			return nil, err
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = srv.store.Schema
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if _, err := pool.Exec(ctx, rawPostgresCreateSQL); err != nil {
			pool.Close()
			return nil, fmt.Errorf("bench: raw baseline table: %w", err)
		}
		return &rawPostgres{pool: pool}, nil
	}
	q := url.Values{}
	q.Set("_txlock", "immediate")
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "secure_delete(1)"} {
		q.Add("_pragma", p)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(b.tmp, "raw-baseline.db")), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	var mode string
	var sync int
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		_ = db.Close()
		return nil, err
	}
	if mode != "wal" || sync != 2 {
		_ = db.Close()
		return nil, fmt.Errorf("bench: raw baseline: journal_mode=%s synchronous=%d, want wal and 2 (FULL) as the store", mode, sync)
	}
	if _, err := db.ExecContext(ctx, rawSQLiteCreateSQL); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bench: raw baseline table: %w", err)
	}
	ins, err := db.PrepareContext(ctx, rawSQLiteInsertSQL)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &rawSQLite{db: db, ins: ins}, nil
}

// rawSQLite is the SQLite batch baseline.
type rawSQLite struct {
	db  *sql.DB
	ins *sql.Stmt
}

func (r *rawSQLite) name() string {
	return "same rows, same driver, PK-only table, 1 tx per 100 rows"
}

func (r *rawSQLite) insert(ctx context.Context, rs []vitalgate.SealedResource) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	ins := tx.StmtContext(ctx, r.ins)
	for _, x := range rs {
		if _, err := ins.ExecContext(ctx, x.Type, x.ID, x.Version, x.PatientIndex, micros(x.Effective), micros(x.LastUpdated), x.Body); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

func (r *rawSQLite) close() { _ = r.db.Close() }

// rawPostgres is the PostgreSQL batch baseline.
type rawPostgres struct{ pool *pgxpool.Pool }

func (r *rawPostgres) name() string {
	return "same rows, same driver, PK-only table, 1 tx per 100 rows"
}

func (r *rawPostgres) insert(ctx context.Context, rs []vitalgate.SealedResource) error {
	n := len(rs)
	types, ids, bodies := make([]string, n), make([]string, n), make([][]byte, n)
	versions, pats := make([]int64, n), make([][]byte, n)
	effs, upds := make([]*time.Time, n), make([]*time.Time, n)
	for i, x := range rs {
		types[i], ids[i], versions[i], pats[i], bodies[i] = x.Type, x.ID, int64(x.Version), x.PatientIndex, x.Body
		e, u := x.Effective, x.LastUpdated
		effs[i], upds[i] = &e, &u
	}
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, rawPostgresInsertSQL, types, ids, versions, pats, effs, upds, bodies); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	return tx.Commit(ctx)
}

func (r *rawPostgres) close() { r.pool.Close() }

// micros is a time as the SQLite store writes it: microseconds since the epoch, or NULL.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}
