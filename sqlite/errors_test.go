package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/sqlite"
)

// TestMapError provokes real SQLite errors on a scratch database and checks how they map.
func TestMapError(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "scratch.db")
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		"CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
		"CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id))",
		"CREATE TABLE big (b BLOB)",
		"INSERT INTO parent (id, name) VALUES (1, 'a')",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	// busy: another connection holds the write lock; this one does not wait.
	busyErr := func() error {
		other, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		conn, err := other.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		_, err = db.ExecContext(ctx, "INSERT INTO big (b) VALUES (x'00')")
		if _, rerr := conn.ExecContext(ctx, "ROLLBACK"); rerr != nil {
			t.Fatal(rerr)
		}
		return err
	}()

	// full: the database may not grow beyond its current size.
	fullErr := func() error {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// The limit cannot go below the current size, so this pins it there.
		if _, err := conn.ExecContext(ctx, "PRAGMA max_page_count = 1"); err != nil {
			t.Fatal(err)
		}
		_, err = conn.ExecContext(ctx, "INSERT INTO big (b) VALUES (zeroblob(1000000))")
		return err
	}()

	exec := func(q string) error { _, err := db.ExecContext(ctx, q); return err }
	safe := vitalgate.Errorf(vitalgate.EFORBIDDEN, "no")
	tests := []struct {
		name    string
		err     error
		code    string
		message string // checked when set
	}{
		{"nil", nil, "", ""},
		{"no-rows", sql.ErrNoRows, vitalgate.ENOTFOUND, "thing not found"},
		{"primary-key", exec("INSERT INTO parent (id, name) VALUES (1, 'b')"), vitalgate.ECONFLICT, "thing exists already"},
		{"unique", exec("INSERT INTO parent (id, name) VALUES (2, 'a')"), vitalgate.ECONFLICT, "thing exists already"},
		{"wrapped-unique", fmt.Errorf("context: %w", exec("INSERT INTO parent (id, name) VALUES (2, 'a')")), vitalgate.ECONFLICT, ""},
		{"not-null", exec("INSERT INTO parent (id, name) VALUES (3, NULL)"), vitalgate.EINTERNAL, "internal error"},
		{"foreign-key", exec("INSERT INTO child (id, parent) VALUES (1, 99)"), vitalgate.EINTERNAL, "internal error"},
		{"syntax", exec("INSERT INTO nowhere"), vitalgate.EINTERNAL, "internal error"},
		{"busy", busyErr, vitalgate.EUNAVAILABLE, "database busy"},
		{"full", fullErr, vitalgate.EUNAVAILABLE, "storage full or failing"},
		{"vitalgate-error", safe, vitalgate.EFORBIDDEN, "no"},
		{"other", errors.New("boom"), vitalgate.EINTERNAL, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.code != "" && tt.err == nil {
				t.Fatal("the operation did not fail")
			}
			got := sqlite.MapError(tt.err, "thing")
			if code := vitalgate.ErrorCode(got); code != tt.code {
				t.Errorf("code %q, want %q (from %v)", code, tt.code, tt.err)
			}
			if tt.message != "" && vitalgate.ErrorMessage(got) != tt.message {
				t.Errorf("message %q, want %q", vitalgate.ErrorMessage(got), tt.message)
			}
			if tt.err != nil && !errors.Is(got, tt.err) {
				t.Errorf("mapped error does not wrap the cause %v", tt.err)
			}
		})
	}

	t.Run("context", func(t *testing.T) {
		for _, cause := range []error{context.Canceled, context.DeadlineExceeded, fmt.Errorf("x: %w", context.Canceled)} {
			if got := sqlite.MapError(cause, "thing"); got != cause {
				t.Errorf("MapError(%v) = %v, want it unchanged", cause, got)
			}
		}
	})
}
