package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestExportDeidentifyFlags: --pseudonyms and --shift-dates need --deidentify; init --fips
// outside fips140=only is refused with what to do; a de-identified export of an empty data
// dir succeeds and creates its sealed pseudonyms file.
func TestExportDeidentifyFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runCmd(t, "init", "--data", dir); code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	for _, args := range [][]string{{"--pseudonyms", "x"}, {"--shift-dates"}} {
		if code, _, errOut := runCmd(t, append([]string{"export", "--data", dir}, args...)...); code != 2 || !strings.Contains(errOut, "need --deidentify") {
			t.Errorf("export %v: exit %d, %s; want usage (2)", args, code, errOut)
		}
	}
	mapping := filepath.Join(t.TempDir(), "pseudonyms")
	code, out, errOut := runCmd(t, "export", "--data", dir, "--deidentify", "--pseudonyms", mapping, "--shift-dates")
	if code != 0 || out != "" || !strings.Contains(errOut, "Exported 0 resources, de-identified") || !strings.Contains(errOut, mapping) {
		t.Fatalf("export --deidentify: %d %q %s", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "export", "--data", dir, "--deidentify", "--pseudonyms", mapping); code != 0 {
		t.Fatalf("export reading the sealed pseudonyms file: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "init", "--fips", "--data", filepath.Join(t.TempDir(), "fips")); code != 1 || !strings.Contains(errOut, "GODEBUG=fips140=only") {
		t.Fatalf("init --fips outside FIPS mode: %d %s", code, errOut)
	}
}
