package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoldenUpdateSession: keys init, publish (live at once with threshold 1), the refusals
// of issue 18 item 8 (unknown model, file over the limit, a foreign key, a version again),
// a threshold of 2 where the second key holder's sign makes the release live, status as a
// table and as JSON, and rotate-root; messages and tables are golden files.
func TestGoldenUpdateSession(t *testing.T) {
	t.Setenv("USER", "operator") // the operator named in the JSON status
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	if code, _, errOut := runAt("init", "--data", dir); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	fw := filepath.Join(tmp, "pump-fw.bin")
	if err := os.WriteFile(fw, []byte("pump firmware 2.1.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sbom := filepath.Join(tmp, "sbom.json")
	if err := os.WriteFile(sbom, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, other, two := filepath.Join(tmp, "keys"), filepath.Join(tmp, "other-keys"), filepath.Join(tmp, "keys2")
	holder := func(i int) string {
		h := filepath.Join(tmp, fmt.Sprintf("holder%d", i))
		if err := os.MkdirAll(h, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, role := range []string{"root", "targets"} {
			data, err := os.ReadFile(filepath.Join(two, fmt.Sprintf("%s-%d.key", role, i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(h, fmt.Sprintf("%s-%d.key", role, i)), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return h
	}
	steps := [][]string{
		{"update", "--help"},
		{"update", "publish", "--help"},
		{"model", "add", "--data", dir, "--id", "pump-a", "--binding", "assigned"},
		{"update", "keys", "init", "--out", keys},
		{"update", "keys", "init", "--out", keys},
		{"update", "keys", "init", "--out", other, "--threshold", "0"},
		{"update", "keys", "init", "--out", other},
		{"update", "status", "--data", dir},
		{"update", "publish", "--data", dir, "--keys", keys, "--model", "pump-a", "--version", "2.1.0", fw, "--sbom", sbom},
		{"update", "publish", "--data", dir, "--keys", keys, "--model", "pump-a", "--version", "2.1.0", fw},
		{"update", "publish", "--data", dir, "--keys", keys, "--model", "infusion-z", "--version", "1", fw},
		{"update", "publish", "--data", dir, "--keys", keys, "--model", "pump-a", "--version", "2.2.0", "--max-size", "8", fw},
		{"update", "publish", "--data", dir, "--keys", other, "--model", "pump-a", "--version", "2.2.0", fw},
		{"update", "publish", "--data", dir, "--keys", keys, "--model", "pump-a", "--version", "2.2.0"},
		{"update", "status", "--data", dir},
		{"update", "status", "--data", dir, "--model", "pump-a", "--json"},
		{"update", "rotate-root", "--data", dir, "--keys", other},
		{"update", "rotate-root", "--data", dir, "--keys", keys, "--online"},
	}
	transcript := ""
	run := func(args []string) {
		code, out, errOut := runAt(args...)
		transcript += fmt.Sprintf("$ vitalgate %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out, errOut)
	}
	for _, args := range steps {
		run(args)
	}
	// A second data dir with a threshold of 2: the first publish (the ceremony, every key)
	// creates its root; then one holder publishes, the other signs.
	dir2 := filepath.Join(tmp, "data2")
	if code, _, errOut := runAt("init", "--data", dir2); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	for _, args := range [][]string{
		{"model", "add", "--data", dir2, "--id", "pump-a", "--binding", "assigned"},
		{"update", "keys", "init", "--out", two, "--threshold", "2"},
		{"update", "publish", "--data", dir2, "--keys", two, "--model", "pump-a", "--version", "1.0", fw},
	} {
		run(args)
	}
	h1, h2 := holder(1), holder(2)
	for _, args := range [][]string{
		{"update", "publish", "--data", dir2, "--keys", h1, "--model", "pump-a", "--version", "2.0", fw},
		{"update", "sign", "--data", dir2, "--keys", h1, "--model", "pump-a", "--version", "2.0"},
		{"update", "sign", "--data", dir2, "--keys", h2, "--model", "pump-a", "--version", "2.0"},
		{"update", "status", "--data", dir2},
	} {
		run(args)
	}
	golden(t, "update-session", strings.ReplaceAll(transcript, tmp, "TMP"))
}
