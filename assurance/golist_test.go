package assurance_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// modulePath is the module whose rules these tests enforce.
const modulePath = "github.com/vitalgate/vitalgate"

// Package is the subset of `go list -json` output the checkers use.
type Package struct {
	ImportPath     string
	Name           string
	Dir            string
	Doc            string
	Standard       bool
	Module         *Module
	Imports        []string
	Deps           []string
	GoFiles        []string
	CgoFiles       []string
	TestGoFiles    []string
	XTestGoFiles   []string
	IgnoredGoFiles []string
}

// Module is the module a listed package belongs to.
type Module struct {
	Path    string
	Version string
}

// ours reports whether import path p belongs to this module.
func ours(p string) bool { return p == modulePath || strings.HasPrefix(p, modulePath+"/") }

// rel returns p relative to the module path ("." for the root package).
func rel(p string) string {
	if p == modulePath {
		return "."
	}
	return strings.TrimPrefix(p, modulePath+"/")
}

// allGoFiles returns every Go file of the package, whatever its build constraints.
func (p *Package) allGoFiles() []string {
	var out []string
	for _, group := range [][]string{p.GoFiles, p.CgoFiles, p.TestGoFiles, p.XTestGoFiles, p.IgnoredGoFiles} {
		for _, f := range group {
			if strings.HasSuffix(f, ".go") {
				out = append(out, filepath.Join(p.Dir, f))
			}
		}
	}
	return out
}

// moduleRoot returns the directory of the module under test (the parent of this package).
func moduleRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		tb.Fatalf("module root %s: %v", root, err)
	}
	return root
}

// goCommand returns an exec.Cmd for the go command run in dir.
func goCommand(tb testing.TB, dir string, args ...string) *exec.Cmd {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("the go command is needed by the assurance tests: %v", err)
	}
	cmd := exec.Command(goBin, args...) // #nosec G204 -- fixed go tool arguments chosen by the test
	cmd.Dir = dir
	return cmd
}

// goList runs `go list -e -json args...` in dir and decodes the package stream.
func goList(tb testing.TB, dir string, args ...string) []*Package {
	tb.Helper()
	cmd := goCommand(tb, dir, append([]string{"list", "-e", "-json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var pkgs []*Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(Package)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			tb.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		tb.Fatalf("go list %s listed no packages", strings.Join(args, " "))
	}
	return pkgs
}

var (
	listOnce          sync.Once
	ourPackages       []*Package // go list ./...
	ourAndDepPackages []*Package // go list -deps ./... (ours, dependencies, standard library)
	binaryPackages    []*Package // go list -deps ./cmd/vitalgate
)

// listings runs the three go list invocations once per test binary.
func listings(t *testing.T) (all, withDeps, binary []*Package) {
	t.Helper()
	root := moduleRoot(t)
	listOnce.Do(func() {
		ourPackages = goList(t, root, "./...")
		ourAndDepPackages = goList(t, root, "-deps", "./...")
		binaryPackages = goList(t, root, "-deps", "./cmd/vitalgate")
	})
	if ourPackages == nil {
		t.Fatal("go list failed in an earlier test")
	}
	return ourPackages, ourAndDepPackages, binaryPackages
}

// report fails t with one line per violation under a heading naming the rule.
func report(t *testing.T, rule string, violations []string) {
	t.Helper()
	if len(violations) == 0 {
		return
	}
	t.Errorf("rule violated: %s\n  %s", rule, strings.Join(violations, "\n  "))
}
