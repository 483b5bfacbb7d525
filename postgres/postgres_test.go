package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/migration"
	"github.com/vitalgate/vitalgate/postgres"
	"github.com/vitalgate/vitalgate/storetest"
)

// DefaultTestServer is the server the tests use unless VITALGATE_TEST_POSTGRES names another.
const DefaultTestServer = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

// ServerDSN returns the connection string of the test server.
func ServerDSN() string {
	if dsn := os.Getenv("VITALGATE_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return DefaultTestServer
}

var (
	adminOnce sync.Once
	adminPool *pgxpool.Pool
	adminErr  error
)

// MustServer returns a pool on the test server for test setup. Without a reachable server it
// skips tb, or fails it when CI=true: CI must run these tests.
func MustServer(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	adminOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		adminPool, adminErr = pgxpool.New(ctx, ServerDSN())
		if adminErr == nil {
			if adminErr = adminPool.Ping(ctx); adminErr != nil {
				adminPool.Close()
			}
		}
	})
	if adminErr != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("no PostgreSQL server reachable at %s (VITALGATE_TEST_POSTGRES), and CI=true requires one: %v",
				redact(ServerDSN()), adminErr)
		}
		tb.Skipf("no PostgreSQL server reachable at %s: set VITALGATE_TEST_POSTGRES to run these tests (%v)",
			redact(ServerDSN()), adminErr)
	}
	return adminPool
}

// redact removes a password from a URL-form connection string.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// NewSchema creates a new, empty schema vg_test_<random> on the test server and drops it, with
// everything in it, when tb ends.
func NewSchema(tb testing.TB) string {
	tb.Helper()
	admin := MustServer(tb)
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := "vg_test_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(context.Background(), "CREATE SCHEMA "+ident); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// SchemaDSN returns the test server's connection string with application_name set to schema,
// so that a test can find its own connections in pg_stat_activity.
func SchemaDSN(tb testing.TB, schema string) string {
	tb.Helper()
	dsn := ServerDSN()
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatal(err)
		}
		q := u.Query()
		q.Set("application_name", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " application_name=" + schema
}

// MustOpen opens a store in schema (a new one if empty) and closes it when tb ends.
func MustOpen(tb testing.TB, schema string, opts postgres.Options) *postgres.DB {
	tb.Helper()
	if schema == "" {
		schema = NewSchema(tb)
	}
	opts.Schema = schema
	db, err := postgres.Open(context.Background(), SchemaDSN(tb, schema), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestMain(m *testing.M) {
	code := m.Run()
	if adminPool != nil {
		adminPool.Close()
	}
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	MustServer(t)
	storetest.Run(t, func(t *testing.T) vitalgate.Store {
		schema := NewSchema(t)
		db, err := postgres.Open(t.Context(), SchemaDSN(t, schema), postgres.Options{Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestConcurrentMigrations opens one fresh schema from several goroutines at once, as several
// nodes starting together would: all succeed and every migration is applied once.
func TestConcurrentMigrations(t *testing.T) {
	const openers = 8
	schema := NewSchema(t)
	dbs := make([]*postgres.DB, openers)
	errs := make([]error, openers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range openers {
		wg.Go(func() {
			<-start
			dbs[i], errs[i] = postgres.Open(t.Context(), SchemaDSN(t, schema), postgres.Options{Schema: schema, MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		t.FailNow()
	}
	admin := MustServer(t)
	files := migrationFiles(t)
	tables := []struct {
		query string
		want  int
	}{
		{"SELECT count(*) FROM " + schema + ".schema_migrations", files},
		{"SELECT count(DISTINCT version) FROM " + schema + ".schema_migrations", files},
		{"SELECT count(*) FROM " + schema + ".audit_head", 1},
	}
	for _, tt := range tables {
		var n int
		if err := admin.QueryRow(t.Context(), tt.query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != tt.want {
			t.Errorf("%s = %d, want %d", tt.query, n, tt.want)
		}
	}
	// Every opener works on the same tables.
	for i, db := range dbs {
		if _, err := db.AppendAudit(t.Context(), []byte{byte('a' + i)}); err != nil {
			t.Fatalf("AppendAudit through opener %d: %v", i, err)
		}
	}
	if n, err := dbs[0].AuditSize(t.Context()); err != nil || n != openers {
		t.Errorf("AuditSize = %d, %v; want %d", n, err, openers)
	}
}

// migrationFiles returns how many migration files there are: versions may have gaps (each
// helper of a release takes its own numbers), so this is how many rows schema_migrations gets.
func migrationFiles(t *testing.T) int {
	t.Helper()
	ms, err := migration.Load(os.DirFS("."), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

func TestSchemaVersion(t *testing.T) {
	schema := NewSchema(t)
	db := MustOpen(t, schema, postgres.Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Re-opening a current schema is fine and applies nothing twice.
	db = MustOpen(t, schema, postgres.Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	admin := MustServer(t)
	var n int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM "+schema+".schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if files := migrationFiles(t); n != files {
		t.Errorf("%d migrations recorded, want %d", n, files)
	}
	if _, err := admin.Exec(t.Context(), "INSERT INTO "+schema+".schema_migrations (version, name, applied_at) VALUES ($1, $2, now())",
		postgres.SchemaVersion()+1, "9999_from_the_future"); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(t.Context(), SchemaDSN(t, schema), postgres.Options{Schema: schema})
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema = %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "version") {
		t.Errorf("error %q does not say which version", err)
	}
}

func TestMissingSchema(t *testing.T) {
	MustServer(t)
	_, err := postgres.Open(t.Context(), ServerDSN(), postgres.Options{Schema: "vg_test_does_not_exist"})
	if !errors.Is(err, postgres.ErrNoSchema) {
		t.Fatalf("Open with a missing schema = %v, want ErrNoSchema", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts postgres.Options
		ok   bool
	}{
		{"zero", postgres.Options{}, true},
		{"set", postgres.Options{Schema: "vitalgate_2", MaxConns: 16, Now: time.Now}, true},
		{"negative-conns", postgres.Options{MaxConns: -1}, false},
		{"schema-upper-case", postgres.Options{Schema: "Vitalgate"}, false},
		{"schema-injection", postgres.Options{Schema: "x, public"}, false},
		{"schema-quote", postgres.Options{Schema: `x"y`}, false},
		{"schema-digit-first", postgres.Options{Schema: "1x"}, false},
		{"schema-too-long", postgres.Options{Schema: strings.Repeat("s", 64)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				if vitalgate.ErrorCode(err) != vitalgate.EINVALID {
					t.Errorf("code %q, want invalid", vitalgate.ErrorCode(err))
				}
				if _, err := postgres.Open(t.Context(), DefaultTestServer, tt.opts); err == nil {
					t.Error("Open accepted invalid options")
				}
			}
		})
	}
}

func TestDefaultsFromNow(t *testing.T) {
	storetest.DefaultsFromNow(t, func(t *testing.T, now func() time.Time) vitalgate.Store {
		return MustOpen(t, "", postgres.Options{Now: now})
	})
}

// TestAuditAppendOnly: the database itself refuses to change or remove audit entries.
func TestAuditAppendOnly(t *testing.T) {
	schema := NewSchema(t)
	db := MustOpen(t, schema, postgres.Options{})
	if _, err := db.AppendAudit(t.Context(), []byte("e0"), []byte("e1")); err != nil {
		t.Fatal(err)
	}
	admin := MustServer(t)
	for _, q := range []string{
		"UPDATE " + schema + ".audit_log SET data = 'x' WHERE idx = 0",
		"DELETE FROM " + schema + ".audit_log WHERE idx = 1",
		"TRUNCATE " + schema + ".audit_log",
		"UPDATE " + schema + ".audit_head SET size = 0",
		"DELETE FROM " + schema + ".audit_head",
	} {
		if _, err := admin.Exec(t.Context(), q); err == nil {
			t.Errorf("%s: succeeded, want refused", q)
		} else if !strings.Contains(err.Error(), "42501") {
			t.Errorf("%s: %v, want SQLSTATE 42501", q, err)
		}
	}
	if n, err := db.AuditSize(t.Context()); err != nil || n != 2 {
		t.Errorf("AuditSize = %d, %v; want 2", n, err)
	}
}
