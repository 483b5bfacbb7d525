package erasure_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/postgres"
	"github.com/vitalgate/vitalgate/sqlite"
)

// eachStore runs fn on a new SQLite store and on a new PostgreSQL store (a schema of its own
// on the test server: 127.0.0.1:5432 database test, or VITALGATE_TEST_POSTGRES). Without a
// reachable server the PostgreSQL case skips, or fails when CI=true.
func eachStore(t *testing.T, fn func(t *testing.T, st vitalgate.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t)) })
}

func openPostgres(t *testing.T) *postgres.DB {
	t.Helper()
	dsn := os.Getenv("VITALGATE_TEST_POSTGRES")
	if dsn == "" {
		dsn = "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgxpool.New(ctx, dsn)
	if err == nil {
		if err = admin.Ping(ctx); err != nil {
			admin.Close()
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no PostgreSQL server reachable (VITALGATE_TEST_POSTGRES), and CI=true requires one: %v", err)
		}
		t.Skipf("no PostgreSQL server reachable: set VITALGATE_TEST_POSTGRES to run this case (%v)", err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "vg_test_" + hex.EncodeToString(b)
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := admin.Exec(context.Background(), "CREATE SCHEMA "+ident); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		admin.Close()
	})
	if u, perr := url.Parse(dsn); perr == nil && u.Scheme != "" {
		q := u.Query()
		q.Set("application_name", schema)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	st, err := postgres.Open(context.Background(), dsn, postgres.Options{Schema: schema, AllowInsecureTransport: true})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
