package assurance_test

import (
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// missingPackageDoc reports whether none of the non-test Go files in dir carries a package
// doc comment. A directory with only test files (e2e) is judged on its doc.go or, failing
// that, its test files.
func missingPackageDoc(dir string, files []string) (bool, error) {
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return false, err
		}
		if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
			return false, nil
		}
	}
	return true, nil
}

// packageDocViolations returns the packages of pkgs (a `go list ./...` listing) without a
// package doc comment.
func packageDocViolations(pkgs []*Package) ([]string, error) {
	var out []string
	for _, p := range pkgs {
		if !ours(p.ImportPath) {
			continue
		}
		files := append(append([]string{}, p.GoFiles...), p.CgoFiles...)
		if len(files) == 0 {
			files = append(append(files, p.TestGoFiles...), p.XTestGoFiles...)
		}
		missing, err := missingPackageDoc(p.Dir, files)
		if err != nil {
			return nil, err
		}
		if missing {
			out = append(out, fmt.Sprintf("%s has no package doc comment (add one, conventionally in doc.go: // Package %s ...)", rel(p.ImportPath), p.Name))
		}
	}
	sort.Strings(out)
	return out, nil
}

// TestPackageDocs checks that every package of ours has a package doc comment.
func TestPackageDocs(t *testing.T) {
	all, _, _ := listings(t)
	bad, err := packageDocViolations(all)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "every package has a doc comment", bad)
}
