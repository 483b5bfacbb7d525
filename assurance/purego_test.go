package assurance_test

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// vettedUnsafe lists the dependency modules whose packages may import "unsafe", each with
// the reason it is accepted. A package of this module is never allowed to. A new dependency
// that imports unsafe fails TestNoUnsafe until someone reviews it and adds it here.
var vettedUnsafe = map[string]string{
	"modernc.org/sqlite":                 "the pure-Go SQLite (a ccgo translation of the C code): unsafe is how it avoids cgo",
	"modernc.org/libc":                   "the C runtime modernc.org/sqlite is translated against: pointer arithmetic on its own heap",
	"modernc.org/memory":                 "the mmap-backed allocator under modernc.org/libc",
	"golang.org/x/sys":                   "the Go project's system-call (unix) and CPU-feature (cpu) packages, used by modernc.org/libc and golang.org/x/crypto",
	"github.com/remyoudompheng/bigfft":   "big-number FFT under modernc.org/mathutil: links to math/big's assembly routines with unsafe",
	"google.golang.org/protobuf":         "the Go protobuf runtime under prometheus/client_golang (metrics): unsafe for fast message reflection",
	"github.com/cespare/xxhash/v2":       "xxHash under prometheus/client_golang (metrics): unsafe string-to-bytes view without copying",
	"github.com/sigstore/protobuf-specs": "generated protobuf messages under sigstore's signature options (go-tuf, package updates): protoimpl's unsafe message layout, as google.golang.org/protobuf",
	"github.com/tinylib/msgp":            "MessagePack (de)serializers generated for go-webauthn's types (under auth/passkeys.go): unsafe for zero-copy string views; Vitalgate stores those types as JSON and never calls them",
	"github.com/philhofer/fwd":           "buffered reader under tinylib/msgp (above): unsafe string view",
	"golang.org/x/crypto":                "internal/alias only (buffer-overlap checks), under go-securesystemslib/encrypted, which is never called (TestNoEncryptedKeys)",
}

// unsafeViolations returns the packages of pkgs (a `go list -deps` listing) that import
// "unsafe" or use cgo without being allowed to: any package of this module, and any
// non-standard package whose module is not in vetted.
func unsafeViolations(pkgs []*Package, vetted map[string]string) []string {
	var out []string
	for _, p := range pkgs {
		if p.Standard {
			continue
		}
		imports := map[string]bool{}
		for _, imp := range p.Imports {
			imports[imp] = true
		}
		if len(p.CgoFiles) > 0 {
			imports["C"] = true
		}
		for _, bad := range []string{"unsafe", "C"} {
			if !imports[bad] {
				continue
			}
			switch {
			case ours(p.ImportPath):
				out = append(out, fmt.Sprintf("%s imports %q: packages of %s must be pure, safe Go", p.ImportPath, bad, modulePath))
			case bad == "C":
				out = append(out, fmt.Sprintf("%s (dependency) uses cgo: the binary must build with CGO_ENABLED=0", p.ImportPath))
			case p.Module == nil || vetted[p.Module.Path] == "":
				mod := "(no module)"
				if p.Module != nil {
					mod = p.Module.Path
				}
				out = append(out, fmt.Sprintf("%s (module %s) imports \"unsafe\" and its module is not in vettedUnsafe: review it and add it with a reason", p.ImportPath, mod))
			}
		}
	}
	sort.Strings(out)
	return out
}

// sourceImportViolations parses the import blocks of files and returns one line per file
// that imports "unsafe" or "C". It covers test files and files excluded by build
// constraints, which `go list` does not analyse.
func sourceImportViolations(root string, files []string) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			return nil, err
		}
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return nil, err
			}
			if path == "unsafe" || path == "C" {
				pos := fset.Position(imp.Pos())
				relName, _ := filepath.Rel(root, pos.Filename)
				out = append(out, fmt.Sprintf("%s:%d imports %q", filepath.ToSlash(relName), pos.Line, path))
			}
		}
	}
	return out, nil
}

// TestPureGoBuild builds the binary with CGO_ENABLED=0: Vitalgate ships as one static,
// pure-Go binary.
func TestPureGoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	root := moduleRoot(t)
	if err := buildPureGo(t, root, "./cmd/vitalgate"); err != nil {
		t.Errorf("rule violated: the product builds with CGO_ENABLED=0\n%v", err)
	}
}

// buildPureGo runs `go build` of pkg in dir with cgo disabled, into a temporary directory.
func buildPureGo(t *testing.T, dir, pkg string) error {
	t.Helper()
	cmd := goCommand(t, dir, "build", "-o", filepath.Join(t.TempDir(), "out"), pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return nil
}

// TestNoUnsafe checks that nothing of ours imports "unsafe" or "C", and that every
// dependency of the binary that imports "unsafe" is vetted.
func TestNoUnsafe(t *testing.T) {
	all, _, binary := listings(t)
	report(t, "no unsafe or cgo in the binary's packages except vetted dependencies", unsafeViolations(binary, vettedUnsafe))

	root := moduleRoot(t)
	var files []string
	for _, p := range all {
		files = append(files, p.allGoFiles()...)
	}
	bad, err := sourceImportViolations(root, files)
	if err != nil {
		t.Fatal(err)
	}
	report(t, `no file of ours imports "unsafe" or "C" (tests and all build tags included)`, bad)

	// A vetted module that no longer appears is harmless, but say so to keep the list honest.
	used := map[string]bool{}
	for _, p := range binary {
		if p.Module != nil && !p.Standard {
			used[p.Module.Path] = true
		}
	}
	for mod := range vettedUnsafe {
		if !used[mod] {
			t.Logf("note: vettedUnsafe lists %s, which the binary no longer uses", mod)
		}
	}
}
