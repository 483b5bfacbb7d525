package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestUserCommands: user add prints the setup code alone on standard output; list shows no
// secret; disable and reset of an unknown user fail; roles that are not people are refused.
func TestUserCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runCmd(t, "init", "--data", dir); code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	var setup string
	tests := []struct {
		name string
		args []string
		code int
		out  func(t *testing.T, stdout string)
	}{
		{"add", []string{"add", "--id", "carol", "--role", "clinician", "--patient", "pat-1"}, 0, func(t *testing.T, stdout string) {
			if setup = strings.TrimSuffix(stdout, "\n"); len(setup) != 43 || strings.ContainsAny(setup, " \n") {
				t.Fatalf("stdout %q, want the setup code alone", stdout)
			}
		}},
		{"add taken", []string{"add", "--id", "carol", "--role", "admin"}, 1, nil},
		{"add ehr-system", []string{"add", "--id", "ehr", "--role", "ehr-system"}, 1, nil},
		{"add admin with care team", []string{"add", "--id", "bob", "--role", "admin", "--patient", "pat-1"}, 1, nil},
		{"add bad id", []string{"add", "--id", "a b", "--role", "admin"}, 1, nil},
		{"disable", []string{"disable", "--id", "carol"}, 0, nil},
		{"disable unknown", []string{"disable", "--id", "nobody"}, 1, nil},
		{"reset", []string{"reset", "--id", "carol"}, 0, func(t *testing.T, stdout string) {
			if s := strings.TrimSuffix(stdout, "\n"); len(s) != 43 || s == setup {
				t.Fatalf("stdout %q, want a new setup code alone", stdout)
			}
		}},
		{"reset unknown", []string{"reset", "--id", "nobody"}, 1, nil},
		{"list", []string{"list"}, 0, func(t *testing.T, stdout string) {
			if !strings.Contains(stdout, "carol") || !strings.Contains(stdout, "setup pending") || strings.Contains(stdout, setup) {
				t.Fatalf("list:\n%s", stdout)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"user", tt.args[0], "--data", dir}, tt.args[1:]...)
			code, stdout, errOut := runCmd(t, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errOut)
			}
			if tt.out != nil {
				tt.out(t, stdout)
			}
		})
	}
}
