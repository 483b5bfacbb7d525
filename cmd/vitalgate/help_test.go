package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEveryCommandHasHelp: every subcommand answers --help with a usage text and exit 0,
// and an unknown command is a usage error.
func TestEveryCommandHasHelp(t *testing.T) {
	subs := map[string][]string{"device": {"add", "assign", "revoke", "list"}, "client": {"add", "list", "disable", "rotate-secret", "set-patients", "set-scopes"}, "keys": {"rotate"},
		"audit": {"verify", "checkpoint", "export"}}
	for name := range commands {
		cases := [][]string{{name, "--help"}}
		for _, sub := range subs[name] {
			cases = append(cases, []string{name, sub, "--help"})
		}
		for _, args := range cases {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errOut bytes.Buffer
				m := &Main{Stdout: &out, Stderr: &errOut}
				if code := m.Run(context.Background(), args); code != 0 {
					t.Fatalf("exit %d: %s", code, errOut.String())
				}
				if !strings.Contains(errOut.String(), "Usage") && !strings.Contains(errOut.String(), "usage") {
					t.Fatalf("no usage text: %q", errOut.String())
				}
				if out.Len() != 0 {
					t.Fatalf("help wrote to standard output: %q", out.String())
				}
			})
		}
	}
	var errOut bytes.Buffer
	if code := (&Main{Stdout: &bytes.Buffer{}, Stderr: &errOut}).Run(context.Background(), []string{"frobnicate"}); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}
