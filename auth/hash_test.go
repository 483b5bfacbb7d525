package auth_test

import (
	"bytes"
	"crypto/fips140"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/auth"
)

// fastPBKDF2 keeps tests quick; FIPS data dirs use auth.FIPSHashParams.
var fastPBKDF2 = auth.HashParams{Algorithm: auth.HashPBKDF2SHA256, Iterations: 1000}

// TestPBKDF2HashAndVerify: a PBKDF2 hash names its algorithm and parameters, verifies the
// right secret only, and malformed or out-of-range hashes are refused, not guessed at.
func TestPBKDF2HashAndVerify(t *testing.T) {
	secret, _ := auth.NewSecret(nil)
	hash, err := auth.HashSecret(secret, fastPBKDF2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$pbkdf2-sha256$i=1000$") || strings.Contains(hash, secret) {
		t.Fatalf("unexpected hash form %q", hash)
	}
	if alg, err := auth.HashAlgorithm(hash); alg != auth.HashPBKDF2SHA256 || err != nil {
		t.Fatalf("HashAlgorithm = %q, %v", alg, err)
	}
	parts := strings.Split(hash, "$")
	tests := []struct {
		name   string
		hash   string
		secret string
		ok     bool
		err    bool
	}{
		{"right secret", hash, secret, true, false},
		{"wrong secret", hash, secret + "x", false, false},
		{"empty secret", hash, "", false, false},
		{"too few iterations", strings.Replace(hash, "i=1000", "i=999", 1), secret, false, true},
		{"too many iterations", strings.Replace(hash, "i=1000", "i=99999999", 1), secret, false, true},
		{"iterations not a number", strings.Replace(hash, "i=1000", "i=x", 1), secret, false, true},
		{"short salt", "$pbkdf2-sha256$i=1000$c2FsdA$" + parts[4], secret, false, true},
		{"short output", "$pbkdf2-sha256$i=1000$" + parts[3] + "$c2hvcnQ", secret, false, true},
		{"missing part", "$pbkdf2-sha256$i=1000$" + parts[3], secret, false, true},
		{"unknown algorithm", strings.Replace(hash, "pbkdf2-sha256", "pbkdf2-sha1", 1), secret, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := auth.VerifySecret(tt.hash, tt.secret)
			if ok != tt.ok || (err != nil) != tt.err {
				t.Fatalf("VerifySecret = %v, %v; want %v, err=%v", ok, err, tt.ok, tt.err)
			}
		})
	}
}

// TestHashParamsValidate: only known algorithms with cost parameters in range hash.
func TestHashParamsValidate(t *testing.T) {
	tests := []struct {
		name string
		p    auth.HashParams
		ok   bool
	}{
		{"default", auth.DefaultHashParams, true},
		{"fips", auth.FIPSHashParams, true},
		{"argon2id without algorithm name", auth.HashParams{Memory: 64, Time: 1, Threads: 1}, true},
		{"argon2id zero memory", auth.HashParams{Algorithm: auth.HashArgon2id, Time: 1, Threads: 1}, false},
		{"pbkdf2 zero iterations", auth.HashParams{Algorithm: auth.HashPBKDF2SHA256}, false},
		{"pbkdf2 below SP 800-132", auth.HashParams{Algorithm: auth.HashPBKDF2SHA256, Iterations: 999}, false},
		{"unknown", auth.HashParams{Algorithm: "bcrypt", Iterations: 10}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
			if _, err := auth.HashSecret("s", tt.p, nil); !tt.ok && err == nil {
				t.Fatal("HashSecret accepted parameters Validate refuses")
			}
		})
	}
	if p := auth.FIPSHashParams; p.Iterations < 600_000 {
		t.Fatalf("FIPS iterations %d are below OWASP's 600,000 for PBKDF2-HMAC-SHA256", p.Iterations)
	}
}

// TestSecretCheckerPBKDF2: the checker of a FIPS data dir verifies PBKDF2 hashes and
// checks unknown principals against a PBKDF2 dummy, so they cost the same.
func TestSecretCheckerPBKDF2(t *testing.T) {
	c, err := auth.NewSecretChecker(1, 1, fastPBKDF2)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := auth.HashSecret("s", fastPBKDF2, nil)
	if ok, err := c.Check(t.Context(), hash, "s"); !ok || err != nil {
		t.Fatalf("Check(right) = %v, %v", ok, err)
	}
	if ok, err := c.Check(t.Context(), "", "s"); ok || err != nil {
		t.Fatalf("Check(no hash) = %v, %v; want false, nil", ok, err)
	}
	if c.Hashes() != 2 {
		t.Fatalf("hashes = %d, want 2", c.Hashes())
	}
}

// TestArgon2RefusedInFIPSOnlyMode runs this test binary again with GODEBUG=fips140=only:
// there, hashing or verifying with argon2id fails with ErrNotApproved (Go's own
// enforcement does not cover golang.org/x/crypto), while PBKDF2 works.
func TestArgon2RefusedInFIPSOnlyMode(t *testing.T) {
	argonHash, err := auth.HashSecret("s", fast, nil)
	if err != nil && !errors.Is(err, auth.ErrNotApproved) {
		t.Fatal(err)
	}
	if fips140.Enforced() {
		if !errors.Is(err, auth.ErrNotApproved) {
			t.Fatalf("HashSecret(argon2id) under fips140=only: %v, want ErrNotApproved", err)
		}
		stored := os.Getenv("VITALGATE_TEST_ARGON2_HASH")
		if stored == "" {
			t.Fatal("the parent did not pass an argon2id hash")
		}
		if ok, err := auth.VerifySecret(stored, "s"); ok || !errors.Is(err, auth.ErrNotApproved) {
			t.Fatalf("VerifySecret(argon2id) under fips140=only = %v, %v; want ErrNotApproved", ok, err)
		}
		c, err := auth.NewSecretChecker(1, 0, fast)
		if c != nil || !errors.Is(err, auth.ErrNotApproved) {
			t.Fatalf("NewSecretChecker(argon2id) under fips140=only = %v; want ErrNotApproved", err)
		}
		p, err := auth.HashSecret("s", fastPBKDF2, nil)
		if err != nil {
			t.Fatalf("PBKDF2 under fips140=only: %v", err)
		}
		if ok, err := auth.VerifySecret(p, "s"); !ok || err != nil {
			t.Fatalf("VerifySecret(PBKDF2) under fips140=only = %v, %v", ok, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestArgon2RefusedInFIPSOnlyMode$", "-test.count=1") // #nosec G204 -- this test binary
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=only", "VITALGATE_TEST_ARGON2_HASH="+argonHash)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the test under GODEBUG=fips140=only failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "PASS") {
		t.Fatalf("the child ran no test:\n%s", out.String())
	}
}
