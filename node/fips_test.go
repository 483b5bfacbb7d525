package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/node"
)

// TestCryptoRecordCheck: a FIPS data dir runs only under fips140=only, a standard one
// under anything but; fips140=on with a standard data dir is allowed with a warning.
func TestCryptoRecordCheck(t *testing.T) {
	tests := []struct {
		fips    bool
		process string
		ok      bool
		warn    bool
	}{
		{false, node.FIPSOff, true, false},
		{false, node.FIPSOn, true, true},
		{false, node.FIPSOnly, false, false},
		{true, node.FIPSOff, false, false},
		{true, node.FIPSOn, false, false},
		{true, node.FIPSOnly, true, false},
	}
	for _, tt := range tests {
		r := node.NewCryptoRecord(tt.fips)
		err := r.Check("/data", tt.process)
		if (err == nil) != tt.ok {
			t.Errorf("fips data dir %v, process fips140=%s: %v, want ok %v", tt.fips, tt.process, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "GODEBUG=fips140=only") {
			t.Errorf("the refusal does not say what to do: %v", err)
		}
		if (r.Warning(tt.process) != "") != tt.warn {
			t.Errorf("fips data dir %v, process fips140=%s: warning %q, want one %v", tt.fips, tt.process, r.Warning(tt.process), tt.warn)
		}
	}
	if p := node.NewCryptoRecord(true).HashParams(); p.Algorithm != auth.HashPBKDF2SHA256 {
		t.Fatalf("FIPS data dir hashes with %q", p.Algorithm)
	}
	if p := node.NewCryptoRecord(false).HashParams(); p.Algorithm != auth.HashArgon2id {
		t.Fatalf("standard data dir hashes with %q", p.Algorithm)
	}
}

// TestFIPSRecordEnforced (this process is not in fips140=only mode, which the assurance
// tests cover): init records a standard data dir; init --fips is refused; a data dir whose
// record says FIPS cannot be opened, and a record that is neither is refused.
func TestFIPSRecordEnforced(t *testing.T) {
	if node.ProcessFIPSMode() == node.FIPSOnly {
		t.Skip("covered by assurance.TestFIPSOnlyProcess")
	}
	n := mustInit(t)
	if n.Crypto != node.NewCryptoRecord(false) || n.HashParams().Algorithm != auth.HashArgon2id {
		t.Fatalf("standard data dir record %+v", n.Crypto)
	}
	data, err := os.ReadFile(filepath.Join(n.Dir, node.CryptoFile))
	if err != nil || !strings.Contains(string(data), `"secret_hash": "argon2id"`) {
		t.Fatalf("%s: %s, %v", node.CryptoFile, data, err)
	}
	dir := filepath.Join(t.TempDir(), "fips")
	if _, err := node.Init(context.Background(), dir, node.InitOptions{FIPS: true}, node.Env{}); err == nil ||
		!strings.Contains(err.Error(), "GODEBUG=fips140=only") {
		t.Fatalf("init --fips outside fips140=only: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the refused init left %s behind", dir)
	}
	for _, tc := range []struct{ name, record, want string }{
		{"fips", `{"fips":true,"secret_hash":"pbkdf2-sha256","godebug":"fips140=only"}`, "GODEBUG=fips140=only"},
		{"inconsistent", `{"fips":true,"secret_hash":"argon2id"}`, "unexpected contents"},
		{"garbage", `{`, node.CryptoFile},
	} {
		if err := os.WriteFile(filepath.Join(n.Dir, node.CryptoFile), []byte(tc.record), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := node.Open(context.Background(), n.Dir, node.Env{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s record: Open = %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
	if err := os.Remove(filepath.Join(n.Dir, node.CryptoFile)); err != nil {
		t.Fatal(err)
	}
	m, err := node.Open(context.Background(), n.Dir, node.Env{})
	if err != nil {
		t.Fatalf("a data dir from before crypto.json: %v", err)
	}
	_ = m.Close()
}
