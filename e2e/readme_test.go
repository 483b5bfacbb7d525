package e2e_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// recipe returns the shell block of README.md between <!-- recipe:NAME --> and <!-- /recipe -->.
func recipe(t *testing.T, name string) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	start := strings.Index(s, "<!-- recipe:"+name+" -->")
	if start < 0 {
		t.Fatalf("README.md has no recipe %q", name)
	}
	s = s[start:]
	end := strings.Index(s, "<!-- /recipe -->")
	if end < 0 {
		t.Fatalf("recipe %q is not closed", name)
	}
	s = s[:end]
	open := strings.Index(s, "```sh\n")
	closeFence := strings.LastIndex(s, "```")
	if open < 0 || closeFence <= open {
		t.Fatalf("recipe %q has no ```sh block", name)
	}
	return s[open+len("```sh\n") : closeFence]
}

// needTools skips when a device-side tool is missing, except in CI where it must be there.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed; .ci/run must install it", tool)
			}
			t.Skipf("%s is not installed: skipping the README recipe", tool)
		}
	}
}

// TestReadmeRecipes runs the README's recipes verbatim with bash against a real server: a
// device enrolls and posts with nothing but openssl and curl, then an EHR client gets a token
// and searches with curl.
func TestReadmeRecipes(t *testing.T) {
	needTools(t, "bash", "openssl", "curl")
	script := recipe(t, "openssl-curl")
	work := t.TempDir()
	run(t, "init", "--data", filepath.Join(work, "vg-data"))
	srv := startServer(t, filepath.Join(work, "vg-data"))

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	env := append(os.Environ(),
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SERVER="+strings.Replace(srv.url, "127.0.0.1", "localhost", 1))
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("recipe failed: %v\nstdout: %s\nstderr: %s", err, out, stderr)
	}
	var obs struct {
		ResourceType string
		ID           string
		Meta         struct{ VersionID string }
	}
	if err := json.Unmarshal(out, &obs); err != nil || obs.ResourceType != "Observation" || obs.ID == "" || obs.Meta.VersionID != "1" {
		t.Fatalf("recipe's last answer is not the stored Observation: %v\n%s", err, out)
	}
	// The EHR recipe reads it back through OAuth2 and FHIR search.
	cmd = exec.Command("bash", "-euo", "pipefail", "-c", recipe(t, "ehr-curl"))
	cmd.Dir, cmd.Env = work, env
	out, err = cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("EHR recipe failed: %v\nstdout: %s\nstderr: %s", err, out, stderr)
	}
	var set struct {
		ResourceType, Type string
		Entry              []struct{ Resource struct{ ID string } }
	}
	if err := json.Unmarshal(out, &set); err != nil || set.Type != "searchset" || len(set.Entry) != 1 || set.Entry[0].Resource.ID != obs.ID {
		t.Fatalf("EHR recipe did not find the observation %s: %v\n%s", obs.ID, err, out)
	}

	srv.stop(t)
	if got := exportIDs(t, filepath.Join(work, "vg-data")); got[obs.ID] != 1 {
		t.Fatalf("the recipe's observation %s is not in the export", obs.ID)
	}
}
