package assurance_test

// The tests in this file prove that each checker can fail: they run the same checker
// functions as the rule tests on small bad (and good) examples and assert what is caught.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mustWrite writes content to dir/name and returns the path.
func mustWrite(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// expect asserts that got has exactly one entry per want substring (in order, since the
// checkers sort their output) and nothing else.
func expect(t *testing.T, got []string, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d violations, want %d:\n  %s", len(got), len(want), strings.Join(got, "\n  "))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("violation %d = %q, want it to contain %q", i, got[i], want[i])
		}
	}
}

// pkg builds a synthetic go list entry.
func pkg(path string, std bool, imports ...string) *Package {
	p := &Package{ImportPath: path, Standard: std, Imports: imports}
	if !std {
		mod := path
		if ours(path) {
			mod = modulePath
		}
		p.Module = &Module{Path: mod}
	}
	return p
}

// TestCatchUnsafe proves unsafeViolations flags unsafe or cgo in our packages and in
// unvetted dependencies, and accepts vetted ones and the standard library.
func TestCatchUnsafe(t *testing.T) {
	vetted := map[string]string{"example.org/vetted": "reviewed"}
	tests := []struct {
		name string
		pkgs []*Package
		want []string
	}{
		{"ours imports unsafe", []*Package{pkg(modulePath+"/fhir", false, "unsafe")}, []string{`fhir imports "unsafe"`}},
		{"ours uses cgo", []*Package{{ImportPath: modulePath + "/seal", Module: &Module{Path: modulePath}, CgoFiles: []string{"c.go"}}}, []string{`seal imports "C"`}},
		{"unvetted dependency", []*Package{pkg("example.org/evil/x", false, "unsafe")}, []string{"not in vettedUnsafe"}},
		{"dependency uses cgo", []*Package{{ImportPath: "example.org/vetted/c", Module: &Module{Path: "example.org/vetted"}, CgoFiles: []string{"c.go"}}}, []string{"uses cgo"}},
		{"vetted dependency and std are fine", []*Package{{ImportPath: "example.org/vetted/x", Module: &Module{Path: "example.org/vetted"}, Imports: []string{"unsafe"}}, pkg("reflect", true, "unsafe")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, unsafeViolations(tt.pkgs, vetted), tt.want)
		})
	}
}

// TestCatchUnsafeInSource proves the source scan finds "C" and "unsafe" imports, also in
// test files and files excluded by build constraints.
func TestCatchUnsafeInSource(t *testing.T) {
	dir := t.TempDir()
	files := []string{
		mustWrite(t, dir, "a/cgo.go", "package a\n\n// #include <stdio.h>\nimport \"C\"\n"),
		mustWrite(t, dir, "a/ptr_test.go", "//go:build ignore\n\npackage a\n\nimport (\n\t\"fmt\"\n\t\"unsafe\"\n)\n"),
		mustWrite(t, dir, "a/fine.go", "package a\n\nimport \"fmt\"\n"),
	}
	got, err := sourceImportViolations(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, got, []string{`a/cgo.go:4 imports "C"`, `a/ptr_test.go:7 imports "unsafe"`})
}

// TestCatchCgoBuild proves that a cgo program fails the CGO_ENABLED=0 build.
func TestCatchCgoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	dir := t.TempDir()
	mustWrite(t, dir, "go.mod", "module example.org/cgo\n\ngo 1.22\n")
	mustWrite(t, dir, "main.go", "package main\n\n// int one(void) { return 1; }\nimport \"C\"\n\nfunc main() { _ = C.one() }\n")
	if err := buildPureGo(t, dir, "."); err == nil {
		t.Fatal("a cgo program built with CGO_ENABLED=0; the pure-Go build check cannot fail")
	}
}

// TestCatchImportRules proves each DESIGN.md §2 rule catches a synthetic offending graph
// and names the import chain.
func TestCatchImportRules(t *testing.T) {
	m := func(s string) string { return modulePath + "/" + s }
	tests := []struct {
		name string
		pkgs []*Package
		want []string
	}{
		{"root imports a module", []*Package{pkg(modulePath, false, "example.org/x"), pkg("example.org/x", false)},
			[]string{"the root package imports only the standard library: . imports example.org/x"}},
		{"pure imports a transport through another package", []*Package{pkg(m("fhir"), false, m("ingest")), pkg(m("ingest"), false, m("httpapi")), pkg(m("httpapi"), false)},
			[]string{"pure packages import no transport: fhir imports " + m("httpapi") + " (fhir -> ingest -> httpapi)"}},
		{"pure imports net/http", []*Package{pkg(m("audit"), false, "net/http"), pkg("net/http", true)},
			[]string{"audit does no network or file I/O (forwarding is in outbox, key files in cmd): audit imports net/http",
				"pure packages import neither net/http nor database/sql: audit imports net/http"}},
		{"pure imports a store", []*Package{pkg(m("seal"), false, m("sqlite")), pkg(m("sqlite"), false, "database/sql"), pkg("database/sql", true)},
			[]string{"pure packages import neither net/http nor database/sql: seal imports database/sql", "pure packages import no store: seal imports " + m("sqlite")}},
		{"seal reads files", []*Package{pkg(m("seal"), false, "os", "fmt"), pkg("os", true), pkg("fmt", true, "os")},
			[]string{"seal does no file or network I/O: seal imports os"}},
		{"seal may use what imports os", []*Package{pkg(m("seal"), false, "fmt"), pkg("fmt", true, "os"), pkg("os", true)}, nil},
		{"transport imports a store", []*Package{pkg(m("mllp"), false, m("storetest")), pkg(m("storetest"), false)},
			[]string{"transports never import a store: mllp imports " + m("storetest")}},
		{"store imports a transport", []*Package{pkg(m("postgres"), false, m("httpapi")), pkg(m("httpapi"), false)},
			[]string{"stores never import a transport: postgres imports " + m("httpapi")}},
		{"something imports cmd", []*Package{pkg(m("ingest"), false, m("cmd/tool")), pkg(m("cmd/tool"), false)},
			[]string{"nothing imports cmd/...: ingest imports " + m("cmd/tool")}},
		{"a non-cmd package wires store and transport", []*Package{pkg(m("demo"), false, m("sqlite"), m("httpapi")), pkg(m("sqlite"), false), pkg(m("httpapi"), false)},
			[]string{"only cmd/vitalgate imports both a store and a transport: demo imports sqlite and httpapi"}},
		{"audit dials the network", []*Package{pkg(m("audit"), false, "crypto/tls"), pkg("crypto/tls", true, "net"), pkg("net", true)},
			[]string{"audit does no network or file I/O (forwarding is in outbox, key files in cmd): audit imports crypto/tls"}},
		{"audit writes a file", []*Package{pkg(m("audit"), false, "os"), pkg("os", true)},
			[]string{"audit does no network or file I/O (forwarding is in outbox, key files in cmd): audit imports os"}},
		{"audit reaches os only through fmt", []*Package{pkg(m("audit"), false, "fmt"), pkg("fmt", true, "os"), pkg("os", true)}, nil},
		{"outbox imports a store", []*Package{pkg(m("outbox"), false, m("sqlite")), pkg(m("sqlite"), false)},
			[]string{"outbox and auditquery import no transport and no store: outbox imports " + m("sqlite")}},
		{"cmd/vitalgate may wire everything", []*Package{pkg(m("cmd/vitalgate"), false, m("sqlite"), m("httpapi")), pkg(m("sqlite"), false), pkg(m("httpapi"), false, m("fhir")), pkg(m("fhir"), false, "strings"), pkg("strings", true)},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, importRuleViolations(importRules, tt.pkgs), tt.want)
		})
	}
}

// TestCatchPackageDocs proves a package without a doc comment is caught (a comment
// separated from the package clause by a blank line does not count).
func TestCatchPackageDocs(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "nodoc/a.go", "package nodoc\n\n// F is documented, the package is not.\nfunc F() {}\n")
	mustWrite(t, dir, "nodoc/b.go", "// Not a doc comment: a blank line follows.\n\npackage nodoc\n")
	mustWrite(t, dir, "doc/doc.go", "// Package doc is documented.\npackage doc\n")
	mustWrite(t, dir, "doc/a.go", "package doc\n")
	pkgs := []*Package{
		{ImportPath: modulePath + "/nodoc", Name: "nodoc", Dir: filepath.Join(dir, "nodoc"), GoFiles: []string{"a.go", "b.go"}},
		{ImportPath: modulePath + "/doc", Name: "doc", Dir: filepath.Join(dir, "doc"), GoFiles: []string{"a.go", "doc.go"}},
	}
	got, err := packageDocViolations(pkgs)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, got, []string{"nodoc has no package doc comment"})
}

// TestCatchSQL proves non-constant SQL is caught for database/sql and pgx-style calls, and
// that constants, prepared statements and annotated exceptions pass.
func TestCatchSQL(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"Sprintf", `db.ExecContext(ctx, fmt.Sprintf("DELETE FROM t WHERE id = '%s'", id))`, []string{`store.go:14: ExecContext gets SQL "fmt.Sprintf`}},
		{"variable", `q := "SELECT * FROM t WHERE id = " + id
	db.QueryRowContext(ctx, q)`, []string{`store.go:15: QueryRowContext gets SQL "q"`}},
		{"concatenation with a variable", `db.Query("SELECT * FROM " + table)`, []string{`Query gets SQL "\"SELECT * FROM \" + table"`}},
		{"Prepare of a parameter", `db.PrepareContext(ctx, id)`, []string{`PrepareContext gets SQL "id"`}},
		{"pgx style on an unknown type", `pool.Exec(ctx, "DELETE FROM t WHERE id = " + id)`, []string{"Exec gets SQL"}},
		{"pgx batch Queue", `batch.Queue(strings.Repeat("SELECT 1;", 2))`, []string{"Queue gets SQL"}},
		{"constants are fine", `db.ExecContext(ctx, deleteSQL, id)
	db.QueryContext(ctx, selectSQL+" WHERE id = ?", id)
	db.Exec("PRAGMA foreign_keys = ON")
	pool.Exec(ctx, selectSQL+" LIMIT 1")
	batch.Queue(deleteSQL, id)`, nil},
		{"prepared statement takes only arguments", `stmt, _ := db.PrepareContext(ctx, deleteSQL)
	stmt.ExecContext(ctx, id)
	stmt.QueryRow(id)`, nil},
		{"annotated exception", `// assurance:sql-ok reviewed: id is an allow-listed table name
	db.ExecContext(ctx, "DROP TABLE "+id)`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := `package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func f(ctx context.Context, db *sql.DB, pool *pgxpool.Pool, batch *pgx.Batch, id, table string) {
	` + tt.body + `
	_, _ = fmt.Sprint, strings.Repeat
}

const (
	deleteSQL = "DELETE FROM t WHERE id = ?"
	selectSQL = "SELECT * FROM t"
)
`
			f := mustWrite(t, dir, "store.go", src)
			got, err := sqlViolations(dir, []string{f}, nil)
			if err != nil {
				t.Fatal(err)
			}
			expect(t, got, tt.want)
		})
	}
}

// TestCatchLoggedSecrets proves secret-named values passed to log calls are caught, and
// that messages, keys, safe values and annotated exceptions pass.
func TestCatchLoggedSecrets(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"slog attribute value", `slog.Info("enrolled", "secret", secret)`, []string{`app.go:12: log call passes "secret" (name contains "secret")`}},
		{"field inside slog.String", `logger.Warn("client", slog.String("s", c.ClientSecret))`, []string{`"slog.String(\"s\", c.ClientSecret)" (name contains "secret")`}},
		{"log.Printf of a password", `log.Printf("login %s", password)`, []string{`"password"`}},
		{"struct logger field, token", `s.log.Info("issued", "t", accessToken)`, []string{`"accessToken" (name contains "token")`}},
		{"chained With", `logger.With("k", c.ClientSecret).Info("x")`, []string{`"c.ClientSecret"`}},
		{"messages, keys and safe values are fine", `slog.Info("token issued", "client", c.ID, "secret_len", 3)
	logger.Error("password rejected", "client", c.ID)`, nil},
		{"annotated exception", `// assurance:log-ok the count of tokens, not a token
	slog.Info("issued", "n", tokenCount)`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := `package app

import (
	"log"
	"log/slog"
)

type client struct{ ID, ClientSecret string }

func f(logger *slog.Logger, s struct{ log *slog.Logger }, c client, secret, password, accessToken string, tokenCount int) {
	_ = log.Printf
	` + tt.body + `
}
`
			f := mustWrite(t, dir, "app.go", src)
			got, err := loggedSecrets(dir, []string{f})
			if err != nil {
				t.Fatal(err)
			}
			expect(t, got, tt.want)
		})
	}
}
