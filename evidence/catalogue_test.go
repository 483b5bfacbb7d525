package evidence_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/evidence"
)

// fdaCategories and hipaaSpecs are the rows the report must have, written out here apart
// from the catalogue so that a row dropped from catalogue.json fails.
var (
	fdaCategories = []string{"Authentication", "Authorization", "Cryptography", "Code, data, and execution integrity",
		"Confidentiality", "Event detection and logging", "Resiliency and recovery", "Updatability and patchability"}
	hipaaSpecs = []string{"164.312(a)(1)", "164.312(a)(2)(i)", "164.312(a)(2)(ii)", "164.312(a)(2)(iii)", "164.312(a)(2)(iv)",
		"164.312(b)", "164.312(c)(1)", "164.312(c)(2)", "164.312(d)", "164.312(e)(1)", "164.312(e)(2)(i)", "164.312(e)(2)(ii)"}
)

func mustCatalogue(t *testing.T) evidence.Catalogue {
	t.Helper()
	c, err := evidence.LoadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCatalogueCoversEveryRequirement: every FDA category and HIPAA specification is in the
// catalogue, and the built-in threat model and MDS2 questions load against it.
func TestCatalogueCoversEveryRequirement(t *testing.T) {
	c := mustCatalogue(t)
	var fda, hipaa []string
	for _, r := range c.Requirements {
		switch r.Framework {
		case "FDA":
			fda = append(fda, r.Title)
		case "HIPAA":
			hipaa = append(hipaa, r.Ref)
		}
	}
	for _, want := range fdaCategories {
		if !slices.Contains(fda, want) {
			t.Errorf("FDA category %q missing", want)
		}
	}
	for _, want := range hipaaSpecs {
		if !slices.Contains(hipaa, want) {
			t.Errorf("HIPAA %s missing", want)
		}
	}
	if _, err := evidence.LoadThreatModel(c); err != nil {
		t.Error(err)
	}
	if _, err := evidence.LoadMDS2(c); err != nil {
		t.Error(err)
	}
}

// TestEveryBuiltControlHasAProbe: a control that is not a gap states its live state, and
// every probe belongs to a control that is built.
func TestEveryBuiltControlHasAProbe(t *testing.T) {
	c := mustCatalogue(t)
	probes := evidence.ProbeIDs()
	var built []string
	for _, k := range c.Controls {
		if k.Gap == "" {
			built = append(built, k.ID)
			if !slices.Contains(probes, k.ID) {
				t.Errorf("control %s is built but has no probe in probes.go", k.ID)
			}
		}
	}
	for _, p := range probes {
		if !slices.Contains(built, p) {
			t.Errorf("probe %s has no built control in catalogue.json", p)
		}
	}
}

// TestNamedTestsExist: every test the catalogue names as evidence is a test function in
// that package, so that a renamed or deleted test cannot silently remain "evidence".
func TestNamedTestsExist(t *testing.T) {
	c := mustCatalogue(t)
	for _, k := range c.Controls {
		for _, ref := range k.Tests {
			pkg, name, ok := strings.Cut(ref, ".")
			if !ok || !strings.HasPrefix(name, "Test") {
				t.Errorf("control %s: test %q is not pkg.TestName", k.ID, ref)
				continue
			}
			files, _ := filepath.Glob(filepath.Join("..", filepath.FromSlash(pkg), "*_test.go"))
			re := regexp.MustCompile(`(?m)^func ` + regexp.QuoteMeta(name) + `\(t \*testing\.T\)`)
			found := false
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if re.Match(data) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("control %s names %s, which is not a test in %s/", k.ID, ref, pkg)
			}
		}
	}
}

// TestParseTestResults: the last result of each top-level test, keyed relative to the module.
func TestParseTestResults(t *testing.T) {
	in := `{"Action":"run","Package":"github.com/vitalgate/vitalgate/httpapi","Test":"TestDenyByDefault"}
{"Action":"pass","Package":"github.com/vitalgate/vitalgate/httpapi","Test":"TestDenyByDefault/sub"}
{"Action":"fail","Package":"github.com/vitalgate/vitalgate/httpapi","Test":"TestDenyByDefault"}
{"Action":"pass","Package":"github.com/vitalgate/vitalgate/httpapi","Test":"TestDenyByDefault"}
# build output that is not JSON
{"Action":"skip","Package":"github.com/vitalgate/vitalgate/e2e","Test":"TestTwoNodesOnPostgres"}
{"Action":"fail","Package":"github.com/vitalgate/vitalgate/seal","Test":"TestAAD"}
{"Action":"pass","Package":"github.com/vitalgate/vitalgate/seal"}
`
	got, err := evidence.ParseTestResults(strings.NewReader(in), evidence.Module)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"httpapi.TestDenyByDefault": "pass", "e2e.TestTwoNodesOnPostgres": "skip", "seal.TestAAD": "fail"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
