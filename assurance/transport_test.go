package assurance_test

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Transports decode, call one capability method and encode (DESIGN.md §2). The rules below
// find the three ways a rule leaks into a transport: an audit entry built there, a store
// interface consumed there, a permission or scope decision taken there.

// transportDirs are the transport packages, relative to the module root.
var transportDirs = []string{"httpapi", "mllp", "console"}

// scopeFuncs are the capability functions that decide scopes, patients and permissions;
// a transport calls the capability method that applies them instead.
var scopeFuncs = map[string]bool{"RequireScope": true, "ScopesAllow": true, "CheckPatient": true, "Permits": true}

// storeMethods returns the methods of the root package's store interfaces (every interface
// type whose name ends in "Store"), keyed by name, with their signatures as the root package
// spells them, qualified as another package sees them ("vitalgate.Device").
func storeMethods(root string) (map[string]string, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(root, "*.go"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		exported := map[string]bool{}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok {
				for _, s := range g.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok {
						exported[ts.Name.Name] = true
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !strings.HasSuffix(ts.Name.Name, "Store") {
				return true
			}
			it, ok := ts.Type.(*ast.InterfaceType)
			if !ok {
				return true
			}
			for _, m := range it.Methods.List {
				ft, ok := m.Type.(*ast.FuncType)
				if !ok {
					continue
				}
				qualifyRoot(ft)
				for _, n := range m.Names {
					out[n.Name] = signature(fset, ft)
				}
			}
			return false
		})
	}
	return out, nil
}

// qualifyRoot rewrites the root package's own exported type names in ft as another package
// names them (Device -> vitalgate.Device).
func qualifyRoot(ft *ast.FuncType) {
	ast.Inspect(ft, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.SelectorExpr:
			return false // already qualified (context.Context, time.Time)
		case *ast.Ident:
			if ast.IsExported(x.Name) {
				x.Name = "vitalgate." + x.Name
			}
		}
		return true
	})
}

// signature prints a method's parameter and result types without parameter names.
func signature(fset *token.FileSet, ft *ast.FuncType) string {
	types := func(fl *ast.FieldList) string {
		if fl == nil {
			return ""
		}
		var parts []string
		for _, f := range fl.List {
			var b bytes.Buffer
			_ = printer.Fprint(&b, fset, f.Type)
			n := len(f.Names)
			if n == 0 {
				n = 1
			}
			for i := 0; i < n; i++ {
				parts = append(parts, b.String())
			}
		}
		return strings.Join(parts, ", ")
	}
	return "(" + types(ft.Params) + ") (" + types(ft.Results) + ")"
}

// transportViolations checks the non-test Go files of the given transport directories and
// names each audit entry literal, store interface and scope decision found there.
func transportViolations(dirs []string, store map[string]string) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			return nil, err
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, err
			}
			local := map[string]string{} // local import name -> import path
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				n := p[strings.LastIndex(p, "/")+1:]
				if imp.Name != nil {
					n = imp.Name.Name
				}
				local[n] = p
			}
			pos := func(n ast.Node) string {
				p := fset.Position(n.Pos())
				return fmt.Sprintf("%s:%d", filepath.ToSlash(p.Filename), p.Line)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.CompositeLit:
					if sel, ok := x.Type.(*ast.SelectorExpr); ok {
						if id, ok := sel.X.(*ast.Ident); ok && local[id.Name] == modulePath+"/audit" && sel.Sel.Name == "Entry" {
							out = append(out, pos(x)+": an audit.Entry literal: the capability builds its audit entries")
						}
					}
				case *ast.SelectorExpr:
					id, ok := x.X.(*ast.Ident)
					if !ok {
						return true
					}
					switch path := local[id.Name]; {
					case path == modulePath && (strings.HasSuffix(x.Sel.Name, "Store") || x.Sel.Name == "Store"):
						out = append(out, pos(x)+": uses the store interface vitalgate."+x.Sel.Name)
					case (path == modulePath+"/access" || path == modulePath+"/auth") && scopeFuncs[x.Sel.Name]:
						out = append(out, pos(x)+": calls "+id.Name+"."+x.Sel.Name+": scope, patient and permission decisions belong in the capability")
					}
				case *ast.TypeSpec:
					it, ok := x.Type.(*ast.InterfaceType)
					if !ok || it.Methods == nil || len(it.Methods.List) == 0 {
						return true
					}
					matched, methods := 0, 0
					for _, m := range it.Methods.List {
						ft, ok := m.Type.(*ast.FuncType)
						if !ok {
							continue // embedded interface
						}
						for _, mn := range m.Names {
							methods++
							if sig, ok := store[mn.Name]; ok && sig == signature(fset, ft) {
								matched++
							}
						}
					}
					if methods > 0 && matched == methods {
						out = append(out, pos(x)+": interface "+x.Name.Name+" is a store interface (every method is a store method): depend on a capability's service instead")
					}
				}
				return true
			})
		}
	}
	sort.Strings(out)
	return out, nil
}

// TestTransportsAreThin enforces that no transport builds an audit entry, consumes a store
// interface or decides scopes itself.
func TestTransportsAreThin(t *testing.T) {
	root := moduleRoot(t)
	store, err := storeMethods(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(store) < 10 {
		t.Fatalf("found only %d store methods in the root package: the checker is broken", len(store))
	}
	var dirs []string
	for _, d := range transportDirs {
		if _, err := os.Stat(filepath.Join(root, d)); err == nil {
			dirs = append(dirs, filepath.Join(root, d))
		}
	}
	got, err := transportViolations(dirs, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		t.Error(strings.TrimPrefix(v, filepath.ToSlash(root)+"/"))
	}
}

// TestCatchThickTransport proves transportViolations finds each kind of leak in a planted
// transport, and accepts a thin one.
func TestCatchThickTransport(t *testing.T) {
	store := map[string]string{
		"Device":        "(context.Context, string) (vitalgate.Device, error)",
		"AssignPatient": "(context.Context, string, []byte, []byte, time.Time, ...[]byte) (error)",
	}
	dir := t.TempDir()
	mustWrite(t, dir, "thick/h.go", `package thick

import (
	"context"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	a "github.com/vitalgate/vitalgate/audit"
)

type Admin interface {
	Device(ctx context.Context, id string) (vitalgate.Device, error)
	AssignPatient(ctx context.Context, id string, pidx, sealed []byte, at time.Time, audit ...[]byte) error
}

type H struct{ s vitalgate.DeviceStore }

func (h H) Serve(p vitalgate.Principal) error {
	_ = a.Entry{Action: "R"}
	return access.RequireScope(p, "Device", 'r')
}
`)
	mustWrite(t, dir, "thick/h_test.go", "package thick\n\nvar _ = a.Entry{}\n")
	mustWrite(t, dir, "thin/h.go", `package thin

import (
	"context"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Devices is a service: one of its methods is not a store method.
type Devices interface {
	Device(ctx context.Context, id string) (vitalgate.Device, error)
	Assign(ctx context.Context, p vitalgate.Principal, id, patient string) (vitalgate.Device, error)
}

var _ = audit.ActionRead
`)
	got, err := transportViolations([]string{filepath.Join(dir, "thick"), filepath.Join(dir, "thin")}, store)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, got, []string{
		"h.go:12: interface Admin is a store interface",
		"h.go:17: uses the store interface vitalgate.DeviceStore",
		"h.go:20: an audit.Entry literal",
		"h.go:21: calls access.RequireScope",
	})
}
