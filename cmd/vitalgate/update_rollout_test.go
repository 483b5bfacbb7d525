package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rollout"
)

// recipeReleases approves pump-a 2.2.0 only, as the README's publish recipe leaves it.
type recipeReleases struct{}

func (recipeReleases) Approved(_ context.Context, model, version string) (string, error) {
	if model == "pump-a" && version == "2.2.0" {
		return "pump-a/2.2.0/pump-fw-2.2.0.bin", nil
	}
	return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "not approved")
}

// goldenReleases approves VM-100 2.0.0 only.
type goldenReleases struct{}

func (goldenReleases) Approved(_ context.Context, model, version string) (string, error) {
	if model == "VM-100" && version == "2.0.0" {
		return "VM-100/2.0.0/vm100-2.0.0.bin", nil
	}
	return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "not approved")
}

// TestGoldenRolloutSession: an operator starts a rollout with a canary group and an
// approval gate, reads its status (table and JSON), sets a maintenance window, pauses,
// resumes and aborts it; a release that is not approved, a second live rollout and an act
// that does not fit the state are refused with the fix named.
func TestGoldenRolloutSession(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	if code, _, errOut := runAt("init", "--data", dir); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	for i := 1; i <= 4; i++ {
		if code, _, errOut := runAt("device", "add", "--data", dir, "--id", fmt.Sprintf("monitor-%d", i), "--patient", "patient-1", "--model", "VM-100"); code != 0 {
			t.Fatalf("device add: %s", errOut)
		}
	}
	step := 0
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		now := goldenClock.Add(time.Duration(step) * time.Minute) // each step a minute later
		step++
		m := &Main{Stdout: &out, Stderr: &errOut, Now: func() time.Time { return now },
			Releases: func(string) rollout.Releases { return goldenReleases{} }}
		code := m.Run(context.Background(), args)
		return code, out.String(), errOut.String()
	}
	steps := [][]string{
		{"update", "rollout", "--data", dir, "--model", "VM-100", "--version", "3.0.0"},
		{"update", "rollout", "--data", dir, "--model", "VM-100", "--version", "2.0.0", "--percent", "50,20"},
		{"update", "rollout", "--data", dir, "--model", "VM-100", "--version", "2.0.0", "--devices", "monitor-1", "--percent", "50,100", "--approve-each", "--errors", "0"},
		{"update", "rollout", "--data", dir, "--model", "VM-100", "--version", "2.0.0"},
		{"update", "rollout", "approve", "--data", dir, "--model", "VM-100"},
		{"update", "window", "set", "--data", dir, "--site", "default", "--hours", "22:00-02:00", "--days", "mon-fri"},
		{"update", "window", "set", "--data", dir, "--site", "default", "--hours", "noon"},
		{"update", "window", "list", "--data", dir},
		{"update", "rollout", "pause", "--data", dir, "--model", "VM-100", "--reason", "a report to check"},
		{"update", "rollout", "status", "--data", dir},
		{"update", "rollout", "resume", "--data", dir, "--model", "VM-100"},
		{"update", "rollout", "abort", "--data", dir, "--model", "VM-100", "--reason", "superseded by 2.0.1"},
		{"update", "rollout", "status", "--data", dir, "--model", "VM-100", "--json"},
		{"update", "rollout", "--data", dir, "--model", "VM-100", "--version", "2.0.0", "--critical"},
		{"update", "window", "clear", "--data", dir, "--site", "default"},
		{"update", "rollout", "--help"},
	}
	var transcript string
	for _, args := range steps {
		code, out, errOut := run(args...)
		transcript += fmt.Sprintf("$ vitalgate %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out, errOut)
	}
	golden(t, "update-rollout-session", strings.ReplaceAll(transcript, dir, "DIR"))
}

// shellWords splits a command line of the README's recipes: words separated by spaces,
// "double-quoted" words with $VG_DATA expanded. Enough for the rollout recipe, whose lines
// are plain commands.
func shellWords(t *testing.T, line, data string) []string {
	t.Helper()
	if strings.ContainsAny(strings.ReplaceAll(line, "$VG_DATA", ""), "$`|;&<>(){}*?'\\") {
		t.Fatalf("recipe line %q uses shell syntax this test does not run", line)
	}
	line = strings.ReplaceAll(line, "$VG_DATA", data)
	var words []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, c := range line {
		switch {
		case c == '"':
			quoted, inWord = !quoted, true
		case c == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestReadmeRolloutRecipe runs the README's "Rollouts" recipe verbatim, command by command,
// against a data dir with devices of pump-a and a repository that approves pump-a 2.2.0
// (the section before it, on publishing, makes one; e2e.TestReadmeUpdateRecipe runs both
// against the real repository): every command must succeed.
func TestReadmeRolloutRecipe(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	start := strings.Index(s, "<!-- recipe:rollout -->")
	if start < 0 {
		t.Fatal("README.md has no rollout recipe")
	}
	s = s[start:]
	s = s[strings.Index(s, "```sh\n")+len("```sh\n"):]
	s = s[:strings.Index(s, "```")]
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runAt("init", "--data", dir); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	for i := 1; i <= 4; i++ {
		if code, _, errOut := runAt("device", "add", "--data", dir, "--id", fmt.Sprintf("pump-%d", i), "--patient", "patient-1", "--model", "pump-a"); code != 0 {
			t.Fatalf("device add: %s", errOut)
		}
	}
	ran := 0
	for _, line := range strings.Split(strings.ReplaceAll(s, "\\\n", ""), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || line == "set -euo pipefail" || strings.HasPrefix(line, "VG_DATA=") {
			continue
		}
		words := shellWords(t, line, dir)
		if words[0] != "vitalgate" {
			t.Fatalf("recipe line %q is not a vitalgate command", line)
		}
		var out, errOut bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &errOut, Now: func() time.Time { return goldenClock },
			Releases: func(string) rollout.Releases { return recipeReleases{} }}
		if code := m.Run(context.Background(), words[1:]); code != 0 {
			t.Fatalf("%s: exit %d\n%s", line, code, errOut.String())
		}
		ran++
	}
	if ran < 5 {
		t.Fatalf("ran %d commands of the recipe, want its 5", ran)
	}
}

// TestRolloutSite: update rollout --site S targets S's devices of the model only, says so
// in its status (table and JSON), and refuses an unknown site and a listed device of
// another site with the fix named.
func TestRolloutSite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runAt("init", "--data", dir); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	if code, _, errOut := runAt("site", "add", "--data", dir, "--id", "north", "--name", "North Hospital"); code != 0 {
		t.Fatalf("site add: %s", errOut)
	}
	for i, site := range []string{"default", "default", "north", "north", "north"} {
		if code, _, errOut := runAt("device", "add", "--data", dir, "--id", fmt.Sprintf("monitor-%d", i+1), "--site", site,
			"--patient", "patient-"+site, "--model", "VM-100"); code != 0 {
			t.Fatalf("device add: %s", errOut)
		}
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &errOut, Now: func() time.Time { return goldenClock },
			Releases: func(string) rollout.Releases { return goldenReleases{} }}
		code := m.Run(context.Background(), args)
		return code, out.String(), errOut.String()
	}
	start := []string{"update", "rollout", "--data", dir, "--model", "VM-100", "--version", "2.0.0"}
	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"--site", "south"}, `no site "south" is registered`},
		{[]string{"--site", "north", "--devices", "monitor-1"}, "monitor-1, which is of site default: this rollout targets site north's devices only"},
	}
	for _, r := range refusals {
		if code, _, errOut := run(append(start, r.args...)...); code == 0 || !strings.Contains(errOut, r.want) {
			t.Errorf("%v: exit %d, %q; want a refusal saying %q", r.args, code, errOut, r.want)
		}
	}
	code, out, errOut := run(append(start, "--site", "north")...)
	if code != 0 {
		t.Fatalf("rollout --site north: %s", errOut)
	}
	if !strings.Contains(errOut, "to site north's devices started") || !strings.Contains(out, "for site north's devices") ||
		!strings.Contains(out, "3 of 3 devices behind") {
		t.Errorf("rollout --site north:\n%s%s", out, errOut)
	}
	_, out, _ = run("update", "rollout", "status", "--data", dir, "--json")
	var st []struct {
		Site    string `json:"site"`
		Devices []struct {
			ID string `json:"id"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var ids []string
	for _, d := range st[0].Devices {
		ids = append(ids, d.ID)
	}
	if st[0].Site != "north" || strings.Join(ids, ",") != "monitor-3,monitor-4,monitor-5" {
		t.Errorf("status --json: site %q, devices %v; want north's monitor-3..5", st[0].Site, ids)
	}
}
