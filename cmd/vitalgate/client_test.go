package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
)

// runCmd runs the vitalgate command line and returns its exit code and outputs.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut}
	code := m.Run(context.Background(), args)
	return code, out.String(), errOut.String()
}

// TestClientCommands (finding 8): client list, disable, rotate-secret, set-patients and
// set-scopes change the stored client, each with its audit entry; scopes beyond the role are
// refused; the new secret is printed alone on standard output.
func TestClientCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runCmd(t, "init", "--data", dir); code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "client", "add", "--data", dir, "--id", "doc", "--role", "clinician"); code != 0 {
		t.Fatalf("client add: %d %s", code, errOut)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  func(t *testing.T, stdout string)
	}{
		{"set-scopes beyond the role", []string{"set-scopes", "--id", "doc", "--scope", "system/Patient.cruds"}, 1, nil},
		{"set-scopes", []string{"set-scopes", "--id", "doc", "--scope", "user/Observation.rs"}, 0, nil},
		{"set-patients", []string{"set-patients", "--id", "doc", "--patient", "pat-1", "--patient", "pat-2"}, 0, nil},
		{"rotate-secret", []string{"rotate-secret", "--id", "doc"}, 0, func(t *testing.T, stdout string) {
			if s := strings.TrimSuffix(stdout, "\n"); len(s) != 43 || strings.ContainsAny(s, " \n") {
				t.Fatalf("stdout %q, want the secret alone", stdout)
			}
		}},
		{"disable", []string{"disable", "--id", "doc"}, 0, nil},
		{"disable an unknown client", []string{"disable", "--id", "nobody"}, 1, nil},
		{"list", []string{"list", "--json"}, 0, func(t *testing.T, stdout string) {
			var got []map[string]any
			dec := json.NewDecoder(strings.NewReader(stdout))
			for dec.More() {
				var c map[string]any
				if err := dec.Decode(&c); err != nil {
					t.Fatal(err)
				}
				got = append(got, c)
			}
			var doc map[string]any
			for _, c := range got {
				if c["id"] == "doc" {
					doc = c
				}
			}
			if len(got) != 2 || doc == nil || doc["status"] != "disabled" || doc["patients"] != float64(2) ||
				strings.Contains(stdout, "argon2") {
				t.Fatalf("list: %s", stdout)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"client", tt.args[0], "--data", dir}, tt.args[1:]...)
			code, stdout, errOut := runCmd(t, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errOut)
			}
			if tt.out != nil {
				tt.out(t, stdout)
			}
		})
	}

	m := &Main{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Now: time.Now}
	n, err := m.openDataDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	c, err := n.store.Client(ctx, "doc")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Disabled || len(c.PatientIndexes) != 2 || strings.Join(c.Scopes, " ") != "user/Observation.rs" {
		t.Fatalf("stored client %+v", c)
	}
	if _, err := auth.GrantScopes(c.Role, c.Scopes, ""); err != nil {
		t.Fatal(err)
	}
	size, err := n.store.AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	if err := n.store.AuditEntries(ctx, 0, size, func(r vitalgate.AuditRecord) error {
		e, err := audit.UnmarshalEntry(r.Data)
		if e.Type == "admin" {
			seen[e.Subtype] = true
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"client-set-scopes", "client-set-patients", "client-rotate-secret", "client-disable"} {
		if !seen[s] {
			t.Errorf("no %s audit entry", s)
		}
	}
}
