package assurance_test

import (
	"bytes"
	"context"
	"crypto/fips140"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/node"
	"github.com/vitalgate/vitalgate/registry"
)

// GODEBUG=fips140=only makes the standard library refuse what FIPS 140-3 does not approve,
// but it cannot see cryptography outside the standard library. These rules prove that no
// such code is reachable in FIPS mode: every non-standard cryptographic package in the
// binary is vetted with the reason it cannot run there, and the one that could (argon2) is
// behind a gate that refuses it under fips140=only. TestFIPSOnlyProcess then runs a FIPS
// data dir end to end in a fips140=only process.

// vettedFIPS lists the non-standard cryptographic packages the binary may contain, each
// with why it is unreachable (or approved) in FIPS mode. A new one fails
// TestNonApprovedCryptoVetted until someone reviews it and adds it here.
var vettedFIPS = map[string]string{
	"golang.org/x/crypto/argon2":  "argon2id secret hashes of standard data dirs; only auth/hash.go imports it and every call is behind argon2Allowed, which refuses under fips140=only (TestArgon2Gated, TestFIPSOnlyProcess)",
	"golang.org/x/crypto/blake2b": "argon2's internal hash: reached only through argon2 (above)",
	"github.com/go-jose/go-jose/v4": "JWS only (ES256 access tokens, RS384/ES384 client assertions): signatures are computed by the standard library's crypto/ecdsa and crypto/rsa, " +
		"which fips140=only enforces; no JWE entry point is called (TestNoJWE)",
	"github.com/go-jose/go-jose/v4/jwt":    "see go-jose/v4",
	"github.com/go-jose/go-jose/v4/json":   "JSON encoding, no cryptography",
	"github.com/go-jose/go-jose/v4/cipher": "JWE key wrap and KDFs, imported by go-jose but reachable only through JWE, which is never called (TestNoJWE)",
	// Under go-tuf's metadata API (package updates, issue 18): go-tuf parses and prints
	// public keys with sigstore's cryptoutils (through crypto/x509), and its signer is
	// sigstore's Ed25519 one over crypto/ed25519. cryptoutils also imports
	// go-securesystemslib/encrypted for password-encrypted private keys, which pulls in
	// the x/crypto packages below; that path is never called (TestNoEncryptedKeys).
	"github.com/sigstore/sigstore/pkg/cryptoutils": "public-key PEM and PKIX parsing over crypto/x509 (enforced by fips140=only); its encrypted-key functions are never called (TestNoEncryptedKeys)",
	"golang.org/x/crypto/internal/alias":           "under go-securesystemslib/encrypted (password-encrypted keys): never called (TestNoEncryptedKeys)",
	"golang.org/x/crypto/internal/poly1305":        "under go-securesystemslib/encrypted (password-encrypted keys): never called (TestNoEncryptedKeys)",
	"golang.org/x/crypto/nacl/secretbox":           "under go-securesystemslib/encrypted (password-encrypted keys): never called (TestNoEncryptedKeys)",
	"golang.org/x/crypto/pbkdf2":                   "under go-securesystemslib/encrypted (password-encrypted keys): never called (TestNoEncryptedKeys)",
	"golang.org/x/crypto/salsa20/salsa":            "under go-securesystemslib/encrypted (password-encrypted keys): never called (TestNoEncryptedKeys)",
	"golang.org/x/crypto/scrypt":                   "under go-securesystemslib/encrypted (password-encrypted keys): never called (TestNoEncryptedKeys)",
	// Under go-webauthn (console passkeys, auth/passkeys.go): a new credential is refused
	// before the library verifies anything unless it is an ES256 (P-256) key with the "none"
	// attestation format (auth.approvedPasskey), so no attestation verifier and no other
	// curve runs; assertions of stored ES256 keys are verified by crypto/ecdsa.
	"github.com/go-webauthn/x/crypto/secp256k1":       "ES256K keys of webauthncose: refused before verification (auth.approvedPasskey accepts ES256 only)",
	"github.com/go-webauthn/x/crypto/secp256k1/ecdsa": "see go-webauthn/x/crypto/secp256k1",
	"github.com/golang-jwt/jwt/v5":                    "SafetyNet attestation and the FIDO metadata blob of go-webauthn: attestation formats other than none are refused first, no metadata provider is configured",
	"golang.org/x/crypto/ocsp":                        "certificate revocation of attestation chains (go-webauthn/x/revoke): attestation formats other than none are refused first",
}

// nonApprovedStd are standard packages that this module's own code must not import: what
// they compute is not FIPS 140-3 approved.
var nonApprovedStd = []string{"crypto/md5", "crypto/sha1", "crypto/des", "crypto/rc4", "crypto/dsa"}

// cryptoLike reports whether a non-standard package path looks cryptographic.
func cryptoLike(path string) bool {
	for _, w := range []string{"crypto", "jose", "cipher", "jwt", "jws", "jwe", "nacl", "blake", "argon", "scrypt", "bcrypt", "curve25519", "chacha", "poly1305", "sha3", "hkdf", "pbkdf"} {
		if strings.Contains(strings.ToLower(path), w) {
			return true
		}
	}
	return false
}

// fipsImportViolations returns the binary's non-standard cryptographic packages that are not
// vetted, and this module's packages that import a non-approved standard package or a
// non-standard cryptographic package other than auth's argon2.
func fipsImportViolations(binary []*Package, vetted map[string]string) []string {
	var out []string
	for _, p := range binary {
		if p.Standard {
			continue
		}
		if ours(p.ImportPath) {
			for _, imp := range p.Imports {
				for _, bad := range nonApprovedStd {
					if imp == bad {
						out = append(out, fmt.Sprintf("%s imports %s, which FIPS 140-3 does not approve", p.ImportPath, imp))
					}
				}
				if strings.HasPrefix(imp, "golang.org/x/crypto/") && !(imp == "golang.org/x/crypto/argon2" && p.ImportPath == modulePath+"/auth") {
					out = append(out, fmt.Sprintf("%s imports %s: cryptography outside the standard library is not covered by fips140=only", p.ImportPath, imp))
				}
			}
			continue
		}
		if cryptoLike(p.ImportPath) && vetted[p.ImportPath] == "" {
			out = append(out, fmt.Sprintf("%s is a cryptographic package outside the standard library: fips140=only does not cover it; review it and add it to vettedFIPS with the reason it is unreachable in FIPS mode", p.ImportPath))
		}
	}
	sort.Strings(out)
	return out
}

// TestNonApprovedCryptoVetted: the binary's cryptography outside the standard library is
// vetted, and this module imports no non-approved algorithm. A planted listing with an
// unvetted package and a module package importing crypto/sha1 must fail.
func TestNonApprovedCryptoVetted(t *testing.T) {
	_, _, binary := listings(t)
	report(t, "cryptography in FIPS mode is the standard library's (or vetted unreachable)", fipsImportViolations(binary, vettedFIPS))

	planted := []*Package{
		{ImportPath: "golang.org/x/crypto/chacha20poly1305", Module: &Module{Path: "golang.org/x/crypto"}},
		{ImportPath: modulePath + "/pki", Imports: []string{"crypto/sha1"}},
		{ImportPath: modulePath + "/seal", Imports: []string{"golang.org/x/crypto/argon2"}},
	}
	if got := fipsImportViolations(planted, vettedFIPS); len(got) != 3 {
		t.Fatalf("the rule missed planted violations: %v", got)
	}
}

// argon2Violations returns the calls of package argon2 in src (a Go file) that are not
// preceded, in the same function, by a call of argon2Allowed().
func argon2Violations(fset *token.FileSet, f *ast.File) []string {
	var out []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		gate := token.NoPos
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "argon2Allowed" && (gate == token.NoPos || call.Pos() < gate) {
				gate = call.Pos()
			}
			return true
		})
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "argon2" && sel.Sel.Name != "Version" {
				if gate == token.NoPos || gate > sel.Pos() {
					out = append(out, fmt.Sprintf("%s: argon2.%s in %s is not preceded by argon2Allowed()", fset.Position(sel.Pos()), sel.Sel.Name, fn.Name.Name))
				}
			}
			return true
		})
	}
	return out
}

// TestArgon2Gated: every use of argon2 in this module's code comes after the
// argon2Allowed() gate in its function, so that fips140=only refuses it. A planted file
// without the gate must fail.
func TestArgon2Gated(t *testing.T) {
	all, _, _ := listings(t)
	var bad []string
	uses := 0
	for _, p := range all {
		for _, name := range p.GoFiles {
			path := filepath.Join(p.Dir, name)
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			imports := false
			for _, imp := range f.Imports {
				if imp.Path.Value == `"golang.org/x/crypto/argon2"` {
					imports = true
				}
			}
			if !imports {
				continue
			}
			uses++
			bad = append(bad, argon2Violations(fset, f)...)
		}
	}
	if uses == 0 {
		t.Fatal("no file imports argon2: update this rule (and vettedFIPS)")
	}
	report(t, "argon2 runs only behind argon2Allowed (refused under GODEBUG=fips140=only)", bad)

	planted := `package auth
import "golang.org/x/crypto/argon2"
func gated(p []byte) []byte { if err := argon2Allowed(); err != nil { return nil }; return argon2.IDKey(p, p, 1, 64, 1, 32) }
func ungated(p []byte) []byte { return argon2.IDKey(p, p, 1, 64, 1, 32) }
func late(p []byte) []byte { k := argon2.IDKey(p, p, 1, 64, 1, 32); _ = argon2Allowed(); return k }
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "planted.go", planted, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := argon2Violations(fset, f); len(got) != 2 || !strings.Contains(got[0], "ungated") || !strings.Contains(got[1], "late") {
		t.Fatalf("the rule did not catch the planted ungated calls: %v", got)
	}
}

// TestNoJWE: this module never calls go-jose's JWE entry points, so its non-approved key
// wrapping (go-jose/cipher) is unreachable.
func TestNoJWE(t *testing.T) {
	all, _, _ := listings(t)
	jwe := map[string]bool{"ParseEncrypted": true, "ParseEncryptedJSON": true, "ParseEncryptedCompact": true, "NewEncrypter": true,
		"NewMultiEncrypter": true, "Encrypted": true, "ParseSignedAndEncrypted": true}
	var bad []string
	for _, p := range all {
		for _, name := range p.GoFiles {
			path := filepath.Join(p.Dir, name)
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && (x.Name == "jose" || x.Name == "jwt") && jwe[sel.Sel.Name] {
						bad = append(bad, fmt.Sprintf("%s: %s.%s", fset.Position(sel.Pos()), x.Name, sel.Sel.Name))
					}
				}
				return true
			})
		}
	}
	report(t, "no JWE (go-jose/cipher stays unreachable)", bad)
}

// TestNoEncryptedKeys: this module never calls the sigstore and go-securesystemslib entry
// points that read or write password-encrypted private keys, so the non-approved ciphers
// and KDFs beneath them (scrypt, secretbox) stay unreachable. Update keys are PKCS#8 PEM
// files parsed by crypto/x509 (package updates).
func TestNoEncryptedKeys(t *testing.T) {
	all, _, _ := listings(t)
	banned := map[string]bool{"UnmarshalPEMToPrivateKey": true, "MarshalPrivateKeyToEncryptedDER": true,
		"GeneratePEMEncodedECDSAKeyPair": true, "GeneratePEMEncodedRSAKeyPair": true, "LoadSignerFromPEMFile": true,
		"LoadSignerFromPEMFileWithOpts": true, "LoadSignerVerifierFromPEMFile": true, "LoadSignerVerifierFromPEMFileWithOpts": true,
		"LoadVerifierFromPEMFile": true, "Encrypt": true, "Decrypt": true, "GetPasswordFromStdIn": true}
	var bad []string
	for _, p := range all {
		for _, name := range p.GoFiles {
			path := filepath.Join(p.Dir, name)
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				if strings.Contains(imp.Path.Value, "go-securesystemslib/encrypted") {
					bad = append(bad, fmt.Sprintf("%s: imports %s", fset.Position(imp.Pos()), imp.Path.Value))
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && (x.Name == "cryptoutils" || x.Name == "signature" || x.Name == "encrypted") && banned[sel.Sel.Name] {
						bad = append(bad, fmt.Sprintf("%s: %s.%s", fset.Position(sel.Pos()), x.Name, sel.Sel.Name))
					}
				}
				return true
			})
		}
	}
	report(t, "no password-encrypted keys (scrypt and secretbox stay unreachable)", bad)
}

// TestFIPSOnlyProcess runs this test binary again with GODEBUG=fips140=only and there
// exercises a FIPS data dir end to end: argon2id is refused, a standard data dir is
// refused, init --fips works and records PBKDF2, the admin secret and a device's
// enrollment secret are PBKDF2 hashes, serve states the mode in /readyz over TLS and
// issues a token for the admin secret, and a de-identified export seals its mapping.
func TestFIPSOnlyProcess(t *testing.T) {
	if !fips140.Enforced() {
		if testing.Short() {
			t.Skip("-short")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSOnlyProcess$", "-test.count=1", "-test.v") // #nosec G204 -- this test binary
		cmd.Env = append(os.Environ(), "GODEBUG=fips140=only")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("under GODEBUG=fips140=only: %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "--- PASS: TestFIPSOnlyProcess") {
			t.Fatalf("the fips140=only run did not pass the test:\n%s", out.String())
		}
		return
	}
	ctx := context.Background()
	if _, err := auth.HashSecret("s", auth.DefaultHashParams, nil); !errors.Is(err, auth.ErrNotApproved) {
		t.Fatalf("argon2id under fips140=only: %v, want ErrNotApproved", err)
	}
	if _, err := node.Init(ctx, filepath.Join(t.TempDir(), "std"), node.InitOptions{}, node.Env{}); err == nil {
		t.Fatal("a standard data dir was created under fips140=only")
	}
	dir := filepath.Join(t.TempDir(), "fips")
	res, err := node.Init(ctx, dir, node.InitOptions{FIPS: true, Operator: "tester"}, node.Env{})
	if err != nil {
		t.Fatalf("init --fips: %v", err)
	}
	n, err := node.Open(ctx, dir, node.Env{})
	if err != nil {
		t.Fatalf("open the FIPS data dir: %v", err)
	}
	defer n.Close()
	if !n.Crypto.FIPS || n.HashParams().Algorithm != auth.HashPBKDF2SHA256 {
		t.Fatalf("record %+v", n.Crypto)
	}
	admin, err := n.Store.Client(ctx, "admin")
	if err != nil || !strings.HasPrefix(admin.SecretHash, "$pbkdf2-sha256$i=600000$") {
		t.Fatalf("admin secret hash %q, %v", admin.SecretHash, err)
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := n.NewRegistry(alog, registry.DefaultConfig(), nil)
	if err != nil {
		t.Fatalf("registry on a FIPS data dir: %v", err)
	}
	if _, _, err := reg.Add(ctx, registry.Operator("tester"), "dev-1", "pat-1", "", 0); err != nil {
		t.Fatalf("device add: %v", err)
	}
	if d, err := n.Store.Device(ctx, "dev-1"); err != nil || !strings.HasPrefix(d.EnrollSecretHash, "$pbkdf2-sha256$") {
		t.Fatalf("enrollment secret hash %q, %v", d.EnrollSecretHash, err)
	}

	// serve: /readyz states the mode, the token endpoint verifies the admin's PBKDF2 hash.
	opt := node.Options{HTTP: httpapi.DefaultConfig()}
	opt.HTTP.Addr = "127.0.0.1:0"
	ready := make(chan string, 1)
	opt.Ready = func(addr string) { ready <- addr }
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- n.Serve(sctx, opt) }()
	defer func() { cancel(); <-served }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-served:
		t.Fatalf("serve on a FIPS data dir: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}
	pool := x509.NewCertPool()
	pool.AddCert(n.CA.Certificate())
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
	resp, err := c.Get("https://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("readyz over TLS in fips140=only: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "fips140=only; secrets pbkdf2-sha256 (FIPS data dir)") {
		t.Fatalf("readyz: %d %q", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("POST", "https://"+addr+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("admin", res.ClientSecret)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "access_token") {
		t.Fatalf("token for the admin secret (PBKDF2): %d %s", resp.StatusCode, body)
	}

	// A de-identified export seals its mapping with the FIPS module's AES-GCM.
	mapping := filepath.Join(t.TempDir(), "pseudonyms")
	if _, err := n.ExportDeidentified(ctx, io.Discard, node.DeidentifyOptions{Pseudonyms: mapping, ShiftDates: true, Operator: "tester"}); err != nil {
		t.Fatalf("export --deidentify: %v", err)
	}
	if _, err := n.ExportDeidentified(ctx, io.Discard, node.DeidentifyOptions{Pseudonyms: mapping, Operator: "tester"}); err != nil {
		t.Fatalf("export --deidentify with the sealed mapping: %v", err)
	}
}
