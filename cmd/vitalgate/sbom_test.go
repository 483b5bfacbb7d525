package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRunSBOM runs the sbom subcommand in-process in both formats and with a bad format.
func TestRunSBOM(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		args    []string
		wantErr error
		check   func(t *testing.T, doc map[string]any)
	}{
		{"default CycloneDX", nil, nil, func(t *testing.T, doc map[string]any) {
			if doc["bomFormat"] != "CycloneDX" || doc["specVersion"] != "1.5" || !strings.HasPrefix(doc["serialNumber"].(string), "urn:uuid:") {
				t.Errorf("header = %v %v %v", doc["bomFormat"], doc["specVersion"], doc["serialNumber"])
			}
			if md := doc["metadata"].(map[string]any); md["timestamp"] != "2026-03-01T12:00:00Z" {
				t.Errorf("timestamp = %v", md["timestamp"])
			}
		}},
		{"SPDX", []string{"--format", "spdx"}, nil, func(t *testing.T, doc map[string]any) {
			if doc["spdxVersion"] != "SPDX-2.3" {
				t.Errorf("spdxVersion = %v", doc["spdxVersion"])
			}
		}},
		{"unknown format", []string{"--format", "xml"}, errUsage, nil},
		{"positional argument", []string{"extra"}, errUsage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			m := &Main{Stdout: &stdout, Stderr: &stderr, Now: func() time.Time { return now }}
			err := m.runSBOM(context.Background(), tt.args)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("runSBOM(%q) = %v, want %v; stderr:\n%s", tt.args, err, tt.wantErr, stderr.String())
			}
			if tt.check == nil {
				return
			}
			var doc map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
			}
			tt.check(t, doc)
		})
	}
}

// TestUUID4 checks the version and variant bits of the serial numbers.
func TestUUID4(t *testing.T) {
	a, b := uuid4(), uuid4()
	if a == b || len(a) != 36 || a[14] != '4' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Errorf("uuid4() = %q, %q", a, b)
	}
}
