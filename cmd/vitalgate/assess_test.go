package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunAssess runs the assess subcommand in-process against loopback test servers: one
// that leaves everything open (exit status 1 with a report) and one that refuses properly
// (exit status 0), plus the usage errors.
func TestRunAssess(t *testing.T) {
	open := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("{}"))
	}))
	closed := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=63072000")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'")
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		switch {
		case r.Method == "GET" && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/fhir/metadata" ||
			strings.HasPrefix(r.URL.Path, "/.well-known/") && r.URL.Path != "/.well-known/est/simpleenroll"):
			_, _ = w.Write([]byte("{}"))
		case r.URL.Path == "/oauth2/token":
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	for _, s := range []*httptest.Server{open, closed} {
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
		s.StartTLS()
		defer s.Close()
	}
	dir := t.TempDir()
	caFile := func(s *httptest.Server) string {
		f := filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_").Replace(s.URL)+".pem")
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	openCA, closedCA := caFile(open), caFile(closed)

	tests := []struct {
		name    string
		args    []string
		wantErr string // substring of the error; "" for none
		usage   bool
		stdout  string // substring of standard output
	}{
		{"no target", nil, "", true, ""},
		{"two targets", []string{closed.URL, open.URL}, "", true, ""},
		{"plain http", []string{"http://127.0.0.1:1"}, "", true, ""},
		{"bad timeout", []string{"--timeout", "-1s", closed.URL}, "", true, ""},
		{"missing CA file", []string{"--ca", filepath.Join(dir, "none.pem"), closed.URL}, "--ca", false, ""},
		{"open server, text", []string{open.URL, "--ca", openCA}, "rated high or critical (worst: critical)", false, "[CRITICAL] Route left open"},
		{"closed server, flags first", []string{"--ca", closedCA, "--timeout", "30s", closed.URL}, "", false, "worst: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			m := &Main{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
			err := m.runAssess(context.Background(), tt.args)
			switch {
			case tt.usage:
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v\n%s", err, stdout.String())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout.String())
			}
		})
	}

	t.Run("JSON", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		m := &Main{Stdout: &stdout, Stderr: &stderr, Now: time.Now}
		err := m.runAssess(context.Background(), []string{open.URL, "--json", "--ca", openCA})
		if err == nil {
			t.Fatal("no error for an open server")
		}
		var doc struct {
			Target      string `json:"target"`
			MaxSeverity string `json:"max_severity"`
			Findings    []struct {
				ID       string `json:"id"`
				Severity string `json:"severity"`
			} `json:"findings"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
			t.Fatalf("%v\n%s", err, stdout.String())
		}
		if doc.MaxSeverity != "critical" || len(doc.Findings) == 0 || doc.Findings[0].Severity != "critical" || !strings.HasPrefix(open.URL, doc.Target) {
			t.Errorf("report: %+v", doc)
		}
	})
}
