package assurance_test

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// storePackages are the directories, relative to the module root, holding SQL stores.
var storePackages = []string{"sqlite", "postgres", "sqlstore"}

// sqlMethods are the methods (database/sql's DB, Tx, Conn; pgx's Conn, Pool, Tx, Batch)
// whose SQL argument must be a constant.
var sqlMethods = map[string]bool{
	"Exec": true, "ExecContext": true, "Query": true, "QueryContext": true,
	"QueryRow": true, "QueryRowContext": true, "Prepare": true, "PrepareContext": true,
	"Queue": true,
	// The SQLite store's own prepared-statement wrappers (sqlite/sqlite.go): their callers
	// must pass constants too.
	"queryRow": true, "query": true, "read": true,
	// Both stores' row helpers (sqlite/audit.go, postgres/audit.go).
	"auditRecords": true, "collect": true, "get": true,
}

// sqlAllowed lists reviewed exceptions, keyed by "file:expression" (file relative to the
// module root), with the reason. An exception can also be written inline: a comment
// containing "assurance:sql-ok" on the call's line or the line above it.
var sqlAllowed = map[string]string{
	"sqlite/migrate.go:m.SQL": "migrations are .sql files embedded with go:embed at build time and reviewed like code",
}

// sqlOKMarker is the inline annotation that accepts a non-constant SQL argument.
const sqlOKMarker = "assurance:sql-ok"

// stdImporter type-checks against the standard library's export data and gives every
// other import an empty package: enough to know database/sql's method signatures and to
// fold constants, without building the dependencies.
type stdImporter struct{ std types.Importer }

// Import implements types.Importer.
func (i stdImporter) Import(path string) (*types.Package, error) {
	if !strings.Contains(strings.Split(path, "/")[0], ".") {
		return i.std.Import(path)
	}
	return nil, fmt.Errorf("not imported: %s", path)
}

// sqlArgIndex returns which argument of call holds the SQL text, or -1 if it has none (a
// prepared statement's Exec). It uses the method signature when the type checker knows it
// (a string parameter named query or sql) and falls back to the name: the Context forms
// and pgx's methods take a context first.
func sqlArgIndex(info *types.Info, sel *ast.SelectorExpr, call *ast.CallExpr) int {
	if s, ok := info.Selections[sel]; ok {
		if sig, ok := s.Type().(*types.Signature); ok {
			params := sig.Params()
			for i := 0; i < params.Len(); i++ {
				if n := params.At(i).Name(); n == "query" || n == "sql" {
					return i
				}
			}
			return -1
		}
	}
	name := sel.Sel.Name
	switch {
	case name == "Queue":
		return 0
	case strings.HasSuffix(name, "Context"):
		return 1
	}
	if len(call.Args) >= 2 && looksLikeContext(call.Args[0]) {
		return 1 // pgx: Exec(ctx, sql, args...)
	}
	return 0
}

// looksLikeContext reports whether e is, by its name, a context.Context.
func looksLikeContext(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return strings.Contains(strings.ToLower(e.Name), "ctx")
	case *ast.CallExpr:
		if s, ok := e.Fun.(*ast.SelectorExpr); ok {
			return s.Sel.Name == "Background" || s.Sel.Name == "TODO" || s.Sel.Name == "Context"
		}
	}
	return false
}

// sqlViolations type-checks the Go files of one package (named by file paths) and returns
// file:line for every SQL call whose SQL argument is not a constant string. root is used to
// shorten file names.
func sqlViolations(root string, files []string, allowed map[string]string) ([]string, error) {
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, f)
	}
	if len(parsed) == 0 {
		return nil, nil
	}
	info := &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	conf := types.Config{Importer: stdImporter{importer.Default()}, Error: func(error) {}}
	_, _ = conf.Check(parsed[0].Name.Name, fset, parsed, info) // errors from stubbed imports are expected

	var out []string
	for _, f := range parsed {
		marked := map[int]bool{}
		for _, cg := range f.Comments {
			if strings.Contains(cg.Text(), sqlOKMarker) {
				marked[fset.Position(cg.End()).Line] = true
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !sqlMethods[sel.Sel.Name] {
				return true
			}
			i := sqlArgIndex(info, sel, call)
			if i < 0 || i >= len(call.Args) {
				return true
			}
			arg := call.Args[i]
			if tv, ok := info.Types[arg]; ok && tv.Value != nil && tv.Value.Kind() == constant.String {
				return true
			}
			pos := fset.Position(arg.Pos())
			file, _ := filepath.Rel(root, pos.Filename)
			file = filepath.ToSlash(file)
			expr := types.ExprString(arg)
			if allowed[file+":"+expr] != "" || marked[pos.Line] || marked[pos.Line-1] || marked[fset.Position(call.Pos()).Line-1] {
				return true
			}
			out = append(out, fmt.Sprintf("%s:%d: %s gets SQL %q, which is not a constant (use a string constant and ? / $n parameters)", file, pos.Line, sel.Sel.Name, expr))
			return true
		})
	}
	sort.Strings(out)
	return out, nil
}

// TestSQLIsConstant checks that the stores send only constant SQL text: values travel as
// parameters, never spliced into the statement.
func TestSQLIsConstant(t *testing.T) {
	all, _, _ := listings(t)
	root := moduleRoot(t)
	checked := 0
	for _, p := range all {
		for _, s := range storePackages {
			if !matches(s, p.ImportPath) {
				continue
			}
			var files []string
			for _, f := range p.GoFiles {
				files = append(files, filepath.Join(p.Dir, f))
			}
			bad, err := sqlViolations(root, files, sqlAllowed)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			report(t, "SQL only from constants ("+rel(p.ImportPath)+")", bad)
		}
	}
	if checked == 0 {
		t.Fatal("no store package found: is storePackages up to date?")
	}
}
