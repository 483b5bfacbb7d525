package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/migration"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/storetest"
)

// MustOpen opens a database in dir (a new temporary directory if empty) and closes it when
// tb ends.
func MustOpen(tb testing.TB, path string, opts sqlite.Options) *sqlite.DB {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "vitalgate.db")
	}
	db, err := sqlite.Open(context.Background(), path, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) vitalgate.Store {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "vitalgate.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestConformanceSmallBatch runs the suite with group commits of one resource at a time, so
// that carrying a batch over to the next commit is exercised.
func TestConformanceSmallBatch(t *testing.T) {
	storetest.Run(t, func(t *testing.T) vitalgate.Store {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "vitalgate.db"), sqlite.Options{MaxBatch: 1, Readers: 1})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

func TestFilePermissions(t *testing.T) {
	tests := []struct {
		name     string
		existing os.FileMode // 0: no file before Open
	}{
		{"new", 0},
		{"existing-world-readable", 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vitalgate.db")
			if tt.existing != 0 {
				if err := os.WriteFile(path, nil, tt.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			db := MustOpen(t, path, sqlite.Options{})
			if err := db.CreateDevice(t.Context(), vitalgate.Device{ID: "d1"}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
				}
			}
		})
	}
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	db := MustOpen(t, path, sqlite.Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Re-opening a current database is fine and applies nothing twice.
	db = MustOpen(t, path, sqlite.Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := raw.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	// Versions may have gaps (each helper of a release takes its own numbers): one row per file.
	ms, err := migration.Load(os.DirFS("."), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Errorf("%d migrations recorded, want %d", n, len(ms))
	}
	if _, err := raw.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		sqlite.SchemaVersion()+1, "9999_from_the_future", 0); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	_, err = sqlite.Open(t.Context(), path, sqlite.Options{})
	if !errors.Is(err, sqlite.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer database = %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "schema version") {
		t.Errorf("error %q does not say which version", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts sqlite.Options
		ok   bool
	}{
		{"zero", sqlite.Options{}, true},
		{"set", sqlite.Options{BusyTimeout: time.Second, MaxBatch: 10, Readers: 2, Now: time.Now}, true},
		{"negative-busy", sqlite.Options{BusyTimeout: -1}, false},
		{"negative-batch", sqlite.Options{MaxBatch: -1}, false},
		{"negative-readers", sqlite.Options{Readers: -1}, false},
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
				if _, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "x.db"), tt.opts); err == nil {
					t.Error("Open accepted invalid options")
				}
			}
		})
	}
}

func TestDefaultsFromNow(t *testing.T) {
	storetest.DefaultsFromNow(t, func(t *testing.T, now func() time.Time) vitalgate.Store {
		return MustOpen(t, "", sqlite.Options{Now: now})
	})
}

func TestCreateResourcesInvalid(t *testing.T) {
	db := MustOpen(t, "", sqlite.Options{})
	tests := []struct {
		name string
		r    vitalgate.SealedResource
	}{
		{"no-type", vitalgate.SealedResource{ID: "1", Body: []byte("x")}},
		{"no-id", vitalgate.SealedResource{Type: "Observation", Body: []byte("x")}},
		{"no-body", vitalgate.SealedResource{Type: "Observation", ID: "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.CreateResources(t.Context(), []vitalgate.SealedResource{tt.r})
			if vitalgate.ErrorCode(err) != vitalgate.EINVALID {
				t.Errorf("CreateResources = %v, want invalid", err)
			}
		})
	}
}

func TestCreateResourcesCancelled(t *testing.T) {
	db := MustOpen(t, "", sqlite.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for i := range 20 { // the writer is idle: a send could race the cancellation
		err := db.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Observation", ID: "o1", Body: []byte("x")}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d: CreateResources = %v, want context.Canceled", i, err)
		}
	}
	if _, err := db.Resource(t.Context(), "Observation", "o1"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("cancelled batch was written: %v", err)
	}
}

func TestClosed(t *testing.T) {
	db := MustOpen(t, "", sqlite.Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return db.Ping(context.Background()) }},
		{"CreateResources", func() error {
			return db.CreateResources(context.Background(), []vitalgate.SealedResource{{Type: "T", ID: "1", Body: []byte("x")}})
		}},
		{"AppendAudit", func() error {
			_, err := db.AppendAudit(context.Background(), []byte("x"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := vitalgate.ErrorCode(tt.call()); code != vitalgate.EUNAVAILABLE {
				t.Errorf("after Close: code %q, want unavailable", code)
			}
		})
	}
}

// TestBusy holds the write lock from another connection, as another process would: writes
// fail with EUNAVAILABLE after the busy timeout, and succeed once the lock is released.
func TestBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	db := MustOpen(t, path, sqlite.Options{BusyTimeout: 50 * time.Millisecond})
	ctx := t.Context()

	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		call func() error
	}{
		{"CreateDevice", func() error { return db.CreateDevice(ctx, vitalgate.Device{ID: "d1"}, []byte("audit")) }},
		{"AppendAudit", func() error { _, err := db.AppendAudit(ctx, []byte("audit")); return err }},
		{"CreateResources", func() error {
			return db.CreateResources(ctx, []vitalgate.SealedResource{{Type: "T", ID: "1", Body: []byte("x")}})
		}},
		{"PutDataKey", func() error {
			_, err := db.PutDataKey(ctx, vitalgate.DataKey{PatientIndex: []byte("p"), Wrapped: []byte("k")})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if vitalgate.ErrorCode(err) != vitalgate.EUNAVAILABLE || vitalgate.ErrorMessage(err) != "database busy" {
				t.Errorf("%s while locked = %v, want unavailable: database busy", tt.name, err)
			}
		})
	}
	// Reads are not blocked by a writer (WAL).
	if _, err := db.Device(ctx, "d1"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("Device while locked = %v, want not found", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if err := tt.call(); err != nil {
			t.Errorf("%s after unlock: %v", tt.name, err)
		}
	}
}

// TestOddPath opens databases whose paths need escaping in a SQLite URI.
func TestOddPath(t *testing.T) {
	tests := []struct {
		name string
		file string
	}{
		{"space", "my data.db"},
		{"query", "a?mode=memory.db"},
		{"fragment", "a#b.db"},
		{"percent", "100%25.db"},
		{"unicode", "données.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			db := MustOpen(t, path, sqlite.Options{})
			if err := db.CreateDevice(t.Context(), vitalgate.Device{ID: "d1"}); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != tt.file {
				t.Errorf("directory holds %v, want only %q", entries, tt.file)
			}
			db = MustOpen(t, path, sqlite.Options{})
			if _, err := db.Device(t.Context(), "d1"); err != nil {
				t.Errorf("re-opened database: %v", err)
			}
		})
	}
}
