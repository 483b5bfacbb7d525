// Package postgres implements vitalgate.Store on PostgreSQL (12 or later), using
// github.com/jackc/pgx/v5 and its connection pool, pgxpool. Several Vitalgate nodes may share
// one database: every guarantee below holds across nodes, not only across goroutines.
//
// # Connecting
//
// Open takes a libpq-style connection string, as a URL or as key=value pairs:
//
//	postgres://vitalgate@db.example.net:5432/vitalgate?sslmode=verify-full&sslrootcert=/etc/vitalgate/db-ca.pem
//	host=db.example.net user=vitalgate dbname=vitalgate sslmode=verify-full sslrootcert=/etc/vitalgate/db-ca.pem
//
// The standard PG* environment variables and the password file are honoured as by libpq.
// Prefer a client certificate (sslcert=, sslkey=) or the password file over a password in the
// connection string; error messages never include the password.
//
// # TLS to PostgreSQL
//
// The sslmode, sslrootcert, sslcert, sslkey, sslpassword, sslsni and sslnegotiation
// parameters have their libpq meaning. Use sslmode=verify-full with sslrootcert naming the CA
// that issued the server's certificate (or sslrootcert=system for the system roots): the
// connection is then encrypted and the server's certificate is checked against the host name.
// sslmode=verify-ca checks the chain but not the name. Open refuses a connection string that
// could reach a server that is not on this machine without a verified certificate (sslmode
// disable, allow, prefer, which is libpq's default, or require without sslrootcert), unless
// Options.AllowInsecureTransport is set: a database on the loopback interface or behind a
// Unix socket may use any mode. Whatever the mode, the TLS connection uses version 1.2 or
// later with ECDHE key exchange and AEAD ciphers only (TLS 1.3 when the server offers it).
//
// # Schema and migrations
//
// The tables live in the schema named by Options.Schema, which must exist (the role needs
// CREATE on it for the first Open), or else in the connection's default search_path. The
// search_path is set per connection at startup, so every statement names its tables
// unqualified and one database can hold several independent stores (the tests give each test
// its own schema).
//
// The schema is created and upgraded by embedded, versioned migrations (migrations/*.sql),
// applied when the store is opened in one transaction that holds a transaction-scoped
// advisory lock (pg_advisory_xact_lock) for the schema, and recorded in schema_migrations.
// Several nodes starting at once therefore apply each migration exactly once; the others
// wait for the lock and find the work done. A schema written by a newer build is refused
// (ErrSchemaTooNew).
//
// # Durability and atomicity
//
// Every write is one transaction; a nil error means it has committed. Connections are opened
// with synchronous_commit=on unless the connection string sets it, so that a commit is on
// disk (and on synchronous standbys, if configured) before it is acknowledged. If the
// connection to the server breaks while a commit is in flight the outcome is unknown to the
// client: the method returns EUNAVAILABLE, and a retry of CreateResources (whose ids the
// server assigned) answers ECONFLICT if the first attempt did commit.
//
// # Audit log and group commit
//
// Every write method's trailing audit entries are appended in the same transaction as the
// write. Indexes must be dense and follow commit order across all nodes, so appenders are
// serialized by the row lock of the one-row audit_head table: the transaction runs
// UPDATE audit_head SET size = size + n RETURNING size, which also yields its index range,
// and holds the lock until it commits. A transaction that rolls back releases the lock
// without consuming indexes, so no gap appears. The append is always the last statement of a
// transaction, to hold the lock as briefly as possible.
//
// Audited transactions therefore commit one at a time, each holding the lock across its
// commit's WAL flush, and their rate is bounded by the latency of one commit. To get more
// than one call per commit, CreateResources and AppendAudit use group commit on each node:
// callers queue for the node's writer goroutines; a writer takes every request waiting (up
// to Options.MaxBatch resources and entries, and 64 callers) and writes them in one
// transaction sent as one pipelined batch (pgx.Batch), a single network round trip:
//
//	BEGIN
//	SAVEPOINT; INSERT resources; INSERT codes; RELEASE     -- per caller with resources
//	UPDATE audit_head …; INSERT audit_log …               -- the entries of every caller
//	COMMIT
//
// Each caller's rows are under their own savepoint, so one caller's failure (a duplicate id:
// ECONFLICT) fails that caller alone: the writer rolls back to its savepoint and sends the
// callers after it again, with an audit append for the callers left, so that indexes are
// given to exactly the callers that commit, densely and in the order of the group. A caller
// whose context is done before the writer takes its request gets ctx.Err() and writes
// nothing; once taken, a request is written with its group (or fails with it), and the
// caller waits for the answer. The group's transaction is bounded by the latest deadline of
// its callers, if they all have one.
//
// There are two writers per node: while one holds the audit_head lock across its commit, the
// other's rows are inserted, and it then waits for the lock; a third could only wait as well.
// Across nodes the lock still serializes commits, but each commit carries a whole group, so
// throughput grows with the number of concurrent callers, up to a group's limits. Other
// writes (devices, clients, nonces, data keys) are not queued; those with audit entries take
// the lock in their own transaction.
//
// audit_log is append-only: a trigger refuses UPDATE, DELETE and TRUNCATE, and another keeps
// audit_head from shrinking. A superuser can still disable triggers; grant the application
// role no more than it needs, and rely on the Merkle tree and signed checkpoints (package
// audit) to detect tampering.
//
// # Errors
//
// Errors are *vitalgate.Error values, mapped from database errors in one function (its table
// is in errors.go): unique violations are ECONFLICT, missing rows ENOTFOUND, and a
// server that is down, restarting, overloaded or out of disk EUNAVAILABLE, with the message
// "database unavailable", so that a PostgreSQL restart gives clean 503 answers; the pool
// replaces broken connections, and a retry succeeds once the server is back.
//
// All SQL is constant text with $n parameters; the only SQL not written as a Go constant is
// the embedded migration files.
package postgres

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/groupcommit"
	"github.com/vitalgate/vitalgate/sqlstore"
)

// Default option values.
const (
	// DefaultMaxConns is the default size of the connection pool.
	DefaultMaxConns = 8
	// DefaultMaxBatch is the default of Options.MaxBatch.
	DefaultMaxBatch = 512
)

// maxIdentifier is PostgreSQL's limit on identifier length (NAMEDATALEN - 1).
const maxIdentifier = 63

// Options configures Open. The zero value gives the defaults.
type Options struct {
	// Schema, if set, is the schema that holds every table: each connection's search_path is
	// set to it alone. It must exist. It must be a plain lower-case identifier (letters,
	// digits, underscores; at most 63 bytes; not starting with a digit). Default: the
	// connection's own search_path (normally "$user", public).
	Schema string
	// MaxConns is the most connections the pool opens. Default DefaultMaxConns.
	MaxConns int
	// MaxBatch is the most resources and audit entries one group commit takes from the
	// queue of waiting CreateResources and AppendAudit callers (and it takes at most 64
	// callers). A single caller's batch is never split, so it may exceed MaxBatch. Default
	// DefaultMaxBatch.
	MaxBatch int
	// Now returns the current time. It fills times the caller left zero (CreatedAt,
	// UpdatedAt, IssuedAt, LastUpdated), decides which nonces have expired and records when
	// migrations ran. Default time.Now.
	Now func() time.Time
	// AllowInsecureTransport permits a connection string that may reach a server on another
	// machine without TLS and a verified server certificate (any sslmode other than
	// verify-full, verify-ca, or require with sslrootcert). Use only on a network that is
	// otherwise protected.
	AllowInsecureTransport bool
}

// Validate reports whether the options are usable. Zero values are valid: they select the
// defaults.
func (o Options) Validate() error {
	switch {
	case o.MaxConns < 0:
		return vitalgate.Errorf(vitalgate.EINVALID, "postgres: MaxConns must not be negative")
	case o.MaxConns > 1<<20:
		return vitalgate.Errorf(vitalgate.EINVALID, "postgres: MaxConns is too large")
	case o.MaxBatch < 0:
		return vitalgate.Errorf(vitalgate.EINVALID, "postgres: MaxBatch must not be negative")
	case o.Schema != "" && !validIdentifier(o.Schema):
		return vitalgate.Errorf(vitalgate.EINVALID,
			"postgres: Schema must be a lower-case identifier of letters, digits and underscores")
	}
	return nil
}

// validIdentifier reports whether s is an identifier that needs no quoting: [a-z_][a-z0-9_]*,
// at most 63 bytes.
func validIdentifier(s string) bool {
	if s == "" || len(s) > maxIdentifier {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func (o Options) withDefaults() Options {
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// DB is a Vitalgate store in a PostgreSQL database. It implements vitalgate.Store and is
// safe for concurrent use.
type DB struct {
	// Shared holds the methods this store shares with the SQLite store (alerts and
	// quarantine, rollouts, node configurations, audit checkpoints, update reads).
	sqlstore.Shared

	pool *pgxpool.Pool
	opts Options

	queue *groupcommit.Queue[write] // group commit of CreateResources and AppendAudit
}

var _ vitalgate.Store = (*DB)(nil)

// Open connects to the database named by dsn (see the package documentation for its form and
// its TLS settings), applies any pending migrations and returns the store. ctx bounds only
// the opening. Open refuses a database whose schema is newer than this build
// (ErrSchemaTooNew), a connection string that would reach a remote server without verified
// TLS (unless Options.AllowInsecureTransport), and a Schema that does not exist. A server
// that cannot be reached gives EUNAVAILABLE.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn redacts the password from its parse errors.
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "postgres: invalid connection string: %v", err)
	}
	if !opts.AllowInsecureTransport {
		if err := checkTransport(cfg.ConnConfig.Config); err != nil {
			return nil, err
		}
	}
	hardenTLS(cfg.ConnConfig.TLSConfig)
	for _, fb := range cfg.ConnConfig.Fallbacks {
		hardenTLS(fb.TLSConfig)
	}
	cfg.MaxConns = int32(opts.MaxConns) // #nosec G115 -- opts.Validate, above, bounds MaxConns to [0, 1<<20]
	if cfg.MinConns > cfg.MaxConns {
		cfg.MinConns = cfg.MaxConns
	}
	params := cfg.ConnConfig.RuntimeParams
	if opts.Schema != "" {
		// Validate allows only identifiers that need no quoting.
		params["search_path"] = opts.Schema
	}
	if _, ok := params["synchronous_commit"]; !ok {
		params["synchronous_commit"] = "on"
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "vitalgate"
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, mapError(err, "open")
	}
	db := &DB{pool: pool, opts: opts}
	db.Shared = sqlstore.New(sharedBackend{db})
	if err := migrate(ctx, pool, opts.Now); err != nil {
		pool.Close()
		return nil, err
	}
	db.queue = groupcommit.New(groupcommit.Options{MaxBatch: opts.MaxBatch, MaxCallers: maxGroupCallers,
		Writers: groupWriters, Closed: unavailable(errStoreClosed)}, writeSize, db.commitGroup)
	return db, nil
}

// checkTransport returns an error unless every host the configuration may connect to is on
// this machine or is reached over TLS with a verified server certificate.
func checkTransport(c pgconn.Config) error {
	check := func(host string, tc *tls.Config) error {
		if localHost(host) || verifiedTLS(tc) {
			return nil
		}
		return vitalgate.Errorf(vitalgate.EINVALID,
			"postgres: the connection to %s would not verify the server's certificate: use sslmode=verify-full with sslrootcert (or set AllowInsecureTransport)", host)
	}
	if err := check(c.Host, c.TLSConfig); err != nil {
		return err
	}
	for _, fb := range c.Fallbacks {
		if err := check(fb.Host, fb.TLSConfig); err != nil {
			return err
		}
	}
	return nil
}

// localHost reports whether host is a Unix socket directory or a loopback address.
func localHost(host string) bool {
	if strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// verifiedTLS reports whether tc, as pgconn built it from sslmode, verifies the server's
// certificate: verify-full (the standard verification) or verify-ca (and require with a root
// certificate), which skip the standard verification but check the chain themselves.
func verifiedTLS(tc *tls.Config) bool {
	if tc == nil {
		return false
	}
	return !tc.InsecureSkipVerify || tc.VerifyPeerCertificate != nil
}

// hardenTLS restricts tc, if any, to TLS 1.2 or later with ECDHE key exchange and AEAD
// ciphers (TLS 1.3 suites are always AEAD).
func hardenTLS(tc *tls.Config) {
	if tc == nil {
		return
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	tc.CipherSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// Ping reports whether the store can serve requests: the pool can reach the server and the
// schema is in place. Returns EUNAVAILABLE otherwise.
func (db *DB) Ping(ctx context.Context) error {
	var v int
	if err := db.pool.QueryRow(ctx, pingSQL).Scan(&v); err != nil {
		err = mapError(err, "ping")
		if vitalgate.ErrorCode(err) == vitalgate.EUNAVAILABLE || errors.Is(err, context.Canceled) ||
			errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return vitalgate.Unavailable(err, "database unavailable")
	}
	return nil
}

const pingSQL = `SELECT coalesce(max(version), 0) FROM schema_migrations`

// Close stops taking writes, waits until the group commits under way (if any) have committed
// and answered their callers and the connections in use are released, and closes the pool.
// Calls after the first do nothing. Methods called after Close return EUNAVAILABLE.
func (db *DB) Close() error {
	db.queue.Close()
	db.pool.Close()
	return nil
}

// Stat returns the pool's statistics (for metrics).
func (db *DB) Stat() *pgxpool.Stat { return db.pool.Stat() }

// Time encoding: timestamptz (microsecond precision), NULL for the zero time. Times are
// truncated to the microsecond and returned in UTC.

// dbTime returns t for a timestamptz parameter: nil (NULL) for the zero time.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

// goTime returns a scanned nullable timestamptz in UTC, the zero time for NULL.
func goTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// dbBlob stores an empty value as NULL.
func dbBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// orNow returns t, or now() if t is zero.
func (db *DB) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return db.opts.Now()
	}
	return t
}
