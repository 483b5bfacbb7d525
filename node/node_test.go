package node_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/node"
)

// mustInit creates a data dir and opens it.
func mustInit(t *testing.T) *node.Node {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	res, err := node.Init(context.Background(), dir, node.InitOptions{Operator: "tester"}, node.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ClientID != "admin" || res.ClientSecret == "" {
		t.Fatalf("init result %+v: want the admin client and its secret", res)
	}
	n, err := node.Open(context.Background(), dir, node.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func TestParseStoreFlag(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    node.StoreConfig
		wantErr bool
	}{
		{"default", "", node.StoreConfig{Driver: "sqlite"}, false},
		{"sqlite", "sqlite", node.StoreConfig{Driver: "sqlite"}, false},
		{"postgres URL", "postgres://h/db", node.StoreConfig{Driver: "postgres", DSN: "postgres://h/db"}, false},
		{"postgresql URL", "postgresql://h/db", node.StoreConfig{Driver: "postgres", DSN: "postgresql://h/db"}, false},
		{"environment", "env:PGDSN", node.StoreConfig{Driver: "postgres", DSNEnv: "PGDSN"}, false},
		{"empty environment name", "env:", node.StoreConfig{}, true},
		{"unknown", "mysql://h/db", node.StoreConfig{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := node.ParseStoreFlag(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseStoreFlag(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestInitLayout checks the data dir's files and their modes, and that Init and Open
// refuse what they must.
func TestInitLayout(t *testing.T) {
	n := mustInit(t)
	for name, mode := range map[string]os.FileMode{
		node.CACertFile: 0o644, node.CAKeyFile: 0o600, node.ServerCertFile: 0o644, node.ServerKeyFile: 0o600,
		node.TokenKeyFile: 0o600, node.AuditKeyFile: 0o600, node.AuditPubFile: 0o644, node.StoreFile: 0o600,
	} {
		st, err := os.Stat(filepath.Join(n.Dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %o, want %o", name, st.Mode().Perm(), mode)
		}
	}
	if _, err := node.ReadVerifier(filepath.Join(n.Dir, node.AuditPubFile)); err != nil {
		t.Errorf("audit.pub: %v", err)
	}
	if _, err := node.Init(context.Background(), n.Dir, node.InitOptions{}, node.Env{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Init on an initialised dir: %v, want a refusal", err)
	}
	if err := os.Chmod(n.Dir, 0o750); err != nil { // #nosec G302 -- the test makes it too open on purpose
		t.Fatal(err)
	}
	if _, err := node.Open(context.Background(), n.Dir, node.Env{}); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("Open of a group-readable dir: %v, want a refusal", err)
	}
	if _, err := node.Open(context.Background(), filepath.Join(t.TempDir(), "none"), node.Env{}); err == nil || !strings.Contains(err.Error(), "vitalgate init") {
		t.Errorf("Open of a missing dir: %v, want the hint to init it", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServe runs the assembled node: HTTPS answers, the MLLP listener demands a device
// certificate, and a stopped server leaves start and stop entries covered by a checkpoint.
func TestServe(t *testing.T) {
	n := mustInit(t)
	cfg := httpapi.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	mllpAddr := freeAddr(t)
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.Serve(ctx, node.Options{HTTP: cfg, MLLPAddr: mllpAddr, Ready: func(a string) { ready <- a }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Serve never became ready")
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.CA.Pool(), MinVersion: tls.VersionTLS13}}}
	resp, err := c.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	raw, err := net.DialTimeout("tcp", mllpAddr, 10*time.Second)
	if err != nil {
		t.Fatalf("no MLLP listener: %v", err)
	}
	raw.Close()
	conn, err := tls.Dial("tcp", mllpAddr, &tls.Config{RootCAs: n.CA.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
	if err == nil {
		// TLS 1.3 reports a refused client certificate on the first read.
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Error("MLLP accepted a connection without a device certificate")
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve returned %v", err)
	}

	size, err := n.Store.AuditSize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var subtypes []string
	if err := n.Store.AuditEntries(context.Background(), 0, size, func(r vitalgate.AuditRecord) error {
		e, err := audit.UnmarshalEntry(r.Data)
		if err == nil && e.Type == "system" {
			subtypes = append(subtypes, e.Subtype)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(subtypes, ",") != "start,stop" {
		t.Errorf("system entries %v, want start,stop", subtypes)
	}
	cps, err := n.Store.AuditCheckpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) == 0 {
		t.Error("no checkpoint was signed")
	}
	v, err := node.ReadVerifier(filepath.Join(n.Dir, node.AuditPubFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(context.Background(), audit.StoreLog{Store: n.Store}, audit.SignedCheckpoints(cps), v, nil); err != nil {
		t.Errorf("the log does not verify: %v", err)
	}
}
