package postgres_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/postgres"
)

// TestMapError provokes real PostgreSQL errors in a scratch schema, and feeds server errors
// that a test cannot easily provoke (shutdown, overload, disk full), and checks how they map.
func TestMapError(t *testing.T) {
	ctx := t.Context()
	schema := NewSchema(t)
	cfg, err := pgxpool.ParseConfig(ServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, q := range []string{
		"CREATE TABLE parent (id integer PRIMARY KEY, name text NOT NULL UNIQUE)",
		"CREATE TABLE child (id integer PRIMARY KEY, parent integer REFERENCES parent (id))",
		"INSERT INTO parent (id, name) VALUES (1, 'a')",
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	real := func(q string) func() error {
		return func() error { _, err := pool.Exec(ctx, q); return err }
	}
	server := func(code string) func() error {
		return func() error {
			return fmt.Errorf("query: %w", &pgconn.PgError{Severity: "FATAL", Code: code, Message: "synthetic"})
		}
	}
	closedPool := func() error {
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		_, err = p.Exec(ctx, "SELECT 1")
		return err
	}
	refused := func() error {
		p, err := pgxpool.New(ctx, "postgres://root@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		_, err = p.Exec(ctx, "SELECT 1")
		return err
	}
	statementTimeout := func() error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 50"); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, "SELECT pg_sleep(5)")
		return err
	}
	lockTimeout := func() error {
		holder, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback(ctx)
		if _, err := holder.Exec(ctx, "UPDATE parent SET name = 'b' WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = 50"); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, "UPDATE parent SET name = 'c' WHERE id = 1")
		return err
	}
	tests := []struct {
		name string
		err  func() error
		code string
	}{
		{"nil", func() error { return nil }, ""},
		{"no-rows", func() error { var n int; return pool.QueryRow(ctx, "SELECT 1 WHERE false").Scan(&n) }, vitalgate.ENOTFOUND},
		{"primary-key", real("INSERT INTO parent (id, name) VALUES (1, 'z')"), vitalgate.ECONFLICT},
		{"unique", real("INSERT INTO parent (id, name) VALUES (2, 'a')"), vitalgate.ECONFLICT},
		{"foreign-key", real("INSERT INTO child (id, parent) VALUES (1, 42)"), vitalgate.ENOTFOUND},
		{"not-null", real("INSERT INTO parent (id) VALUES (3)"), vitalgate.EINTERNAL},
		{"syntax", real("SELEC 1"), vitalgate.EINTERNAL},
		{"undefined-table", real("SELECT * FROM nope"), vitalgate.EINTERNAL},
		{"statement-timeout", statementTimeout, vitalgate.EUNAVAILABLE},
		{"lock-timeout", lockTimeout, vitalgate.EUNAVAILABLE},
		{"connection-refused", refused, vitalgate.EUNAVAILABLE},
		{"closed-pool", closedPool, vitalgate.EUNAVAILABLE},
		{"admin-shutdown", server("57P01"), vitalgate.EUNAVAILABLE},
		{"crash-shutdown", server("57P02"), vitalgate.EUNAVAILABLE},
		{"cannot-connect-now", server("57P03"), vitalgate.EUNAVAILABLE},
		{"too-many-connections", server("53300"), vitalgate.EUNAVAILABLE},
		{"disk-full", server("53100"), vitalgate.EUNAVAILABLE},
		{"out-of-memory", server("53200"), vitalgate.EUNAVAILABLE},
		{"serialization", server("40001"), vitalgate.EUNAVAILABLE},
		{"deadlock", server("40P01"), vitalgate.EUNAVAILABLE},
		{"connection-failure", server("08006"), vitalgate.EUNAVAILABLE},
		{"connection-exception", server("08000"), vitalgate.EUNAVAILABLE},
		{"read-only-standby", server("25006"), vitalgate.EUNAVAILABLE},
		{"check-violation", server("23514"), vitalgate.EINTERNAL},
		{"other", func() error { return errors.New("boom") }, vitalgate.EINTERNAL},
		{"vitalgate-error", func() error { return vitalgate.Errorf(vitalgate.EFORBIDDEN, "no") }, vitalgate.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := postgres.MapError(tt.err(), "thing")
			if got := vitalgate.ErrorCode(err); got != tt.code {
				t.Errorf("code %q (%v), want %q", got, err, tt.code)
			}
			if tt.code == vitalgate.EUNAVAILABLE {
				if msg := vitalgate.ErrorMessage(err); msg != "database unavailable" {
					t.Errorf("message %q, want %q", msg, "database unavailable")
				}
			}
			if tt.code == vitalgate.EINTERNAL && vitalgate.ErrorMessage(err) != "internal error" {
				t.Errorf("internal error shows %q to the caller", vitalgate.ErrorMessage(err))
			}
		})
	}

	t.Run("context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := pool.Exec(cctx, "SELECT 1")
		if err := postgres.MapError(err, "thing"); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled query maps to %v, want context.Canceled", err)
		}
	})
	t.Run("no-rows-message", func(t *testing.T) {
		err := postgres.MapError(pgx.ErrNoRows, "device")
		if msg := vitalgate.ErrorMessage(err); msg != "device not found" {
			t.Errorf("message %q", msg)
		}
	})
}

// TestOpenErrors: an unreachable server is EUNAVAILABLE; a connection string that would reach
// a remote server without a verified certificate is refused before connecting.
func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ca := writeCA(t)
	tests := []struct {
		name string
		dsn  string
		opts postgres.Options
		code string
	}{
		{"unreachable", "postgres://root@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", postgres.Options{}, vitalgate.EUNAVAILABLE},
		{"bad-dsn", "postgres://root@127.0.0.1:notaport/test", postgres.Options{}, vitalgate.EINVALID},
		{"remote-plaintext", "postgres://u@db.invalid/x?sslmode=disable", postgres.Options{}, vitalgate.EINVALID},
		{"remote-default-prefer", "postgres://u@db.invalid/x", postgres.Options{}, vitalgate.EINVALID},
		{"remote-require-unverified", "host=db.invalid user=u dbname=x sslmode=require", postgres.Options{}, vitalgate.EINVALID},
		{"remote-second-host-plaintext", "postgres://u@127.0.0.1:1,db.invalid:5432/x?sslmode=disable", postgres.Options{}, vitalgate.EINVALID},
		// Verified TLS, or an explicit opt-out, passes the check and then fails to connect.
		{"remote-verify-full", "postgres://u@db.invalid/x?connect_timeout=2&sslmode=verify-full&sslrootcert=" + ca, postgres.Options{}, vitalgate.EUNAVAILABLE},
		{"remote-verify-ca", "postgres://u@db.invalid/x?connect_timeout=2&sslmode=verify-ca&sslrootcert=" + ca, postgres.Options{}, vitalgate.EUNAVAILABLE},
		{"remote-plaintext-allowed", "postgres://u@db.invalid/x?connect_timeout=2&sslmode=disable", postgres.Options{AllowInsecureTransport: true}, vitalgate.EUNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := postgres.Open(ctx, tt.dsn, tt.opts)
			if err == nil {
				db.Close()
			}
			if got := vitalgate.ErrorCode(err); got != tt.code {
				t.Errorf("Open = %v (code %q), want code %q", err, got, tt.code)
			}
		})
	}
}

// writeCA writes a self-signed CA certificate (PEM) to a temporary file and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
