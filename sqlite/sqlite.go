// Package sqlite implements vitalgate.Store on a single SQLite database file, using the pure-Go
// driver modernc.org/sqlite.
//
// The database runs in WAL mode with synchronous=FULL, so a transaction whose commit has
// returned survives a crash or power loss. Writes go through one connection (SQLite allows a
// single writer) and begin with BEGIN IMMEDIATE, so concurrent writers queue instead of
// failing with SQLITE_BUSY; reads use a separate pool of read-only connections.
// CreateResources and AppendAudit use group commit: concurrent callers share one transaction
// (and one fsync), each under its own savepoint, so one caller's conflict fails only that
// caller.
//
// The audit log is the audit_log table. Every write method takes trailing audit entries and
// appends them in the same transaction as the write (in CreateResources, inside the caller's
// savepoint), so there is no write without its entries and no entry for a write that did not
// happen. An entry's index is assigned in the transaction as max(idx) + 1, which keeps indexes
// dense and in commit order, also when other processes write the same file. Triggers refuse
// UPDATE and DELETE on audit_log and any INSERT but at the next index; they stop accidents, not
// attackers: the Merkle tree and signed checkpoints of package audit detect changes made
// around them.
//
// The schema is created and upgraded by embedded, versioned migrations (migrations/*.sql),
// applied in one transaction when the database is opened and recorded in the
// schema_migrations table. A database written by a newer build is refused (ErrSchemaTooNew).
//
// The file and its -wal and -shm companions are created with mode 0600. secure_delete is on,
// so deleted or overwritten values (a patient's wrapped data key in particular, whose erasure
// erases the patient) are overwritten in the file rather than left in free pages.
//
// All SQL is constant text with ? parameters; the only SQL not written as a Go constant is the
// embedded migration files.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/groupcommit"
	"github.com/vitalgate/vitalgate/sqlstore"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Default option values.
const (
	// DefaultBusyTimeout is long enough for an operator's command (backup, client add) to
	// find a gap between the transactions of a server under write load on a busy machine:
	// 5 s was seen to run out in CI (SQLITE_BUSY from `backup` under load).
	DefaultBusyTimeout = 15 * time.Second
	DefaultMaxBatch    = 512
	DefaultReaders     = 4
)

// ErrSchemaTooNew is returned (wrapped) by Open when the database's schema version is newer
// than any migration this build knows: it was written by a newer version of Vitalgate.
var ErrSchemaTooNew = errors.New("database schema is newer than this build supports")

// Options configures Open. The zero value gives the defaults.
type Options struct {
	// BusyTimeout is how long a statement waits for a lock held by another connection or
	// process before failing with EUNAVAILABLE. Default DefaultBusyTimeout.
	BusyTimeout time.Duration
	// MaxBatch is the most resources and audit entries one group commit takes from the
	// queue of waiting CreateResources and AppendAudit callers. A single caller's batch is
	// never split, so it may exceed MaxBatch. Default DefaultMaxBatch.
	MaxBatch int
	// Readers is the number of read-only connections. Default DefaultReaders.
	Readers int
	// Now returns the current time. It fills times the caller left zero (CreatedAt,
	// UpdatedAt, IssuedAt, LastUpdated) and records when migrations ran. Default time.Now.
	Now func() time.Time
}

// Validate reports whether the options are usable. Zero values are valid: they select the
// defaults.
func (o Options) Validate() error {
	switch {
	case o.BusyTimeout < 0:
		return vitalgate.Errorf(vitalgate.EINVALID, "sqlite: BusyTimeout must not be negative")
	case o.MaxBatch < 0:
		return vitalgate.Errorf(vitalgate.EINVALID, "sqlite: MaxBatch must not be negative")
	case o.Readers < 0:
		return vitalgate.Errorf(vitalgate.EINVALID, "sqlite: Readers must not be negative")
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.BusyTimeout == 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Readers == 0 {
		o.Readers = DefaultReaders
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// DB is a Vitalgate store in one SQLite database file. It implements vitalgate.Store and is
// safe for concurrent use.
type DB struct {
	// Shared holds the methods this store shares with the PostgreSQL store (alerts and
	// quarantine, rollouts, node configurations, audit checkpoints, update reads).
	sqlstore.Shared

	path string
	opts Options

	w *sql.DB // the single write connection; transactions begin IMMEDIATE
	r *sql.DB // read-only connections

	insertResource   *sql.Stmt // prepared on the write connection
	insertCode       *sql.Stmt
	deletePrior      *sql.Stmt
	insertIdentifier *sql.Stmt
	insertAudit      *sql.Stmt

	readStmts sync.Map // SQL text (one of this package's constants) -> *sql.Stmt on the read pool

	queue *groupcommit.Queue[batch] // group commit of CreateResources and AppendAudit

	closeOnce sync.Once
	closeErr  error
}

var _ vitalgate.Store = (*DB)(nil)

// Open opens the database at path, creating it (mode 0600) if it does not exist, and applies
// any pending migrations. ctx bounds only the opening. Open refuses a database whose schema
// is newer than this build (ErrSchemaTooNew).
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := createPrivate(abs); err != nil {
		return nil, err
	}

	db := &DB{
		path: abs,
		opts: opts,
	}
	db.Shared = sqlstore.New(sharedBackend{db})
	if err := db.open(ctx); err != nil {
		_ = db.closePools() // the open error is the one to report
		return nil, err
	}
	db.queue = groupcommit.New(groupcommit.Options{MaxBatch: opts.MaxBatch, Writers: 1,
		Closed: vitalgate.Errorf(vitalgate.EUNAVAILABLE, "store closed")}, batchSize, db.commitGroup)
	return db, nil
}

func (db *DB) open(ctx context.Context) error {
	var err error
	busy := strconv.FormatInt(db.opts.BusyTimeout.Milliseconds(), 10)

	wq := url.Values{}
	wq.Set("_busy_timeout", busy)
	wq.Set("_journal_mode", "WAL")
	wq.Set("_synchronous", "FULL")
	wq.Set("_foreign_keys", "1")
	wq.Set("_txlock", "immediate")
	wq.Set("_defensive", "1")
	wq.Add("_pragma", "secure_delete(1)")
	wq.Add("_pragma", "trusted_schema(0)")
	// The group commit writes many callers in one transaction, each under a savepoint: keep
	// the savepoints' journal in memory (it only serves a rollback to a savepoint; the WAL
	// is what makes a commit durable) and give the writer a page cache that holds a group's
	// dirty pages, so that they are not spilled to the WAL before the commit.
	wq.Add("_pragma", "temp_store(MEMORY)")
	wq.Add("_pragma", "cache_size(-65536)")
	if db.w, err = sql.Open("sqlite", fileURI(db.path, wq)); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", db.path, err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)
	if err := db.checkPragmas(ctx); err != nil {
		return err
	}
	if err := migrate(ctx, db.w, db.opts.Now); err != nil {
		return err
	}
	// The -wal and -shm files exist now that the write connection is open in WAL mode.
	// SQLite creates them with the database file's mode; make sure regardless of umask.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Chmod(db.path+suffix, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sqlite: %w", err)
		}
	}

	rq := url.Values{}
	rq.Set("mode", "ro")
	rq.Set("_busy_timeout", busy)
	rq.Add("_pragma", "trusted_schema(0)")
	if db.r, err = sql.Open("sqlite", fileURI(db.path, rq)); err != nil {
		return fmt.Errorf("sqlite: open %s read-only: %w", db.path, err)
	}
	db.r.SetMaxOpenConns(db.opts.Readers)
	db.r.SetMaxIdleConns(db.opts.Readers)
	if err := db.r.PingContext(ctx); err != nil {
		return mapError(err, "open read-only")
	}

	if db.insertResource, err = db.w.PrepareContext(ctx, insertResourceSQL); err != nil {
		return mapError(err, "prepare")
	}
	if db.deletePrior, err = db.w.PrepareContext(ctx, deletePriorVersionSQL); err != nil {
		return mapError(err, "prepare")
	}
	if db.insertCode, err = db.w.PrepareContext(ctx, insertCodeSQL); err != nil {
		return mapError(err, "prepare")
	}
	if db.insertIdentifier, err = db.w.PrepareContext(ctx, insertIdentifierSQL); err != nil {
		return mapError(err, "prepare")
	}
	if db.insertAudit, err = db.w.PrepareContext(ctx, insertAuditSQL); err != nil {
		return mapError(err, "prepare")
	}
	return nil
}

// checkPragmas verifies that the write connection has the settings durability and integrity
// depend on, in case the driver ignored a DSN parameter.
func (db *DB) checkPragmas(ctx context.Context) error {
	var mode string
	if err := db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return mapError(err, "open")
	}
	var sync, fk, secure int
	if err := db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return mapError(err, "open")
	}
	if err := db.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return mapError(err, "open")
	}
	if err := db.w.QueryRowContext(ctx, "PRAGMA secure_delete").Scan(&secure); err != nil {
		return mapError(err, "open")
	}
	if mode != "wal" || sync != 2 || fk != 1 || secure != 1 {
		return vitalgate.Internal(fmt.Errorf("journal_mode=%s synchronous=%d foreign_keys=%d secure_delete=%d",
			mode, sync, fk, secure), "sqlite: unexpected connection settings")
	}
	return nil
}

// fileURI returns a SQLite URI for the absolute path with the given query parameters.
func fileURI(abs string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// createPrivate creates the database file with mode 0600 if it does not exist, and tightens
// the mode of an existing one.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) // #nosec G304 -- path is the database file the operator configured
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Ping reports whether the store can serve requests: it is open and both the read and the
// write connections answer. Returns EUNAVAILABLE otherwise.
func (db *DB) Ping(ctx context.Context) error {
	if db.queue.Closed() {
		return vitalgate.Errorf(vitalgate.EUNAVAILABLE, "store closed")
	}
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		return unavailable(err)
	}
	if err := db.w.PingContext(ctx); err != nil {
		return unavailable(err)
	}
	return nil
}

func unavailable(err error) error {
	err = mapError(err, "ping")
	if vitalgate.ErrorCode(err) == vitalgate.EUNAVAILABLE || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return vitalgate.Unavailable(err, "database unavailable")
}

// Close stops accepting batches, waits until the batches already taken are committed and
// answered, checkpoints the write-ahead log into the database file and closes the
// connections. Calls after the first return the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.queue.Close()
		db.closeErr = db.closePools()
	})
	return db.closeErr
}

func (db *DB) closePools() error {
	var errs []error
	for _, s := range []*sql.Stmt{db.insertResource, db.deletePrior, db.insertCode, db.insertIdentifier, db.insertAudit} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	db.readStmts.Range(func(_, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		return true
	})
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		// Best effort: fold the log back into the database file. Failure loses nothing:
		// the log is replayed on the next open.
		_, _ = db.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errs = append(errs, db.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return vitalgate.Internal(err, "sqlite: close")
	}
	return nil
}

// Time encoding: INTEGER microseconds since the Unix epoch, UTC; NULL for the zero time.

func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func goTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// dbBlob stores an empty value as NULL.
func dbBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// read returns the statement for query (a constant of this package) prepared on the read
// pool, preparing it on first use: SQLite then parses each query once per connection
// instead of on every call (the per-request device lookup spent most of its time there).
func (db *DB) read(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := db.readStmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	// assurance:sql-ok query is a constant at every call of read, queryRow and query (checked)
	st, err := db.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.readStmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// queryRow runs a prepared single-row read.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := db.read(ctx, query) // assurance:sql-ok passed through from a checked caller
	if err != nil {
		// assurance:sql-ok query is a constant at every call of queryRow (checked)
		return db.r.QueryRowContext(ctx, query, args...) // the error comes back through Scan
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a prepared multi-row read.
func (db *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := db.read(ctx, query) // assurance:sql-ok passed through from a checked caller
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// orNow returns t, or now() if t is zero.
func (db *DB) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return db.opts.Now()
	}
	return t
}
