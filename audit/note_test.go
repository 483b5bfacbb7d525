package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/audit"
)

// The example key and note of golang.org/x/mod/sumdb/note (ExampleSign, ExampleOpen), which
// implements the same signed-note format: checks interoperability byte for byte.
const (
	peterSeed = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz" // 0x01 || Ed25519 seed
	peterVKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
	peterSig  = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

func peterKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	seed, err := base64.StdEncoding.DecodeString(peterSeed)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed[1:])
}

func TestSignedNoteInterop(t *testing.T) {
	s, err := audit.NewSigner("PeterNeumann", peterKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Verifier().String(); got != peterVKey {
		t.Errorf("verifier key = %s, want %s", got, peterVKey)
	}
	if s.KeyID() != 0xc74f20a3 || s.Name() != "PeterNeumann" {
		t.Errorf("Name, KeyID = %s, %08x", s.Name(), s.KeyID())
	}
	v, err := audit.ParseVerifierKey(peterVKey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != "PeterNeumann" || v.KeyID() != 0xc74f20a3 || !bytes.Equal(v.PublicKey(), s.Verifier().PublicKey()) {
		t.Errorf("ParseVerifierKey = %s %08x", v.Name(), v.KeyID())
	}
	// The reference note's text is not a checkpoint: OpenCheckpoint checks the signature
	// first, so a note whose signature verifies fails only at parsing the checkpoint.
	text := "If you think cryptography is the answer to your problem,\n" +
		"then you don't know what your problem is.\n"
	ref := text + "\n" + peterSig
	if _, err := audit.OpenCheckpoint([]byte(ref), v); !errors.Is(err, audit.ErrMalformedNote) ||
		!strings.Contains(err.Error(), "fewer than three lines") {
		t.Errorf("reference note: err = %v, want a valid signature on a non-checkpoint", err)
	}
	bad := strings.Replace(ref, "problem is", "problem was", 1)
	if _, err := audit.OpenCheckpoint([]byte(bad), v); !errors.Is(err, audit.ErrInvalidSignature) {
		t.Errorf("altered reference note: err = %v, want ErrInvalidSignature", err)
	}
	// Our signature lines have the same shape: the key id c74f20a3 encodes as "x08g" + "o".
	note, err := audit.SignCheckpoint(audit.Checkpoint{Origin: "PeterNeumann", Size: 1}, s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(note, []byte("\n\n— PeterNeumann x08go")) {
		t.Errorf("signature line does not start with the key id: %q", note)
	}
	if _, err := audit.OpenCheckpoint(note, v); err != nil {
		t.Errorf("OpenCheckpoint of our own note: %v", err)
	}
}

func TestVerifierKeyRoundTrip(t *testing.T) {
	s := MustSigner(t, "vitalgate.example/audit", 1)
	v, err := audit.ParseVerifierKey(s.Verifier().String())
	if err != nil {
		t.Fatal(err)
	}
	if v.String() != s.Verifier().String() {
		t.Errorf("round trip: %s != %s", v, s.Verifier())
	}
	if (audit.Verifier{}).String() != "" {
		t.Errorf("zero Verifier has a key string")
	}
}

func TestParseVerifierKeyErrors(t *testing.T) {
	tests := []struct{ name, vkey string }{
		{"empty", ""},
		{"no parts", "PeterNeumann"},
		{"two parts", "PeterNeumann+c74f20a3"},
		{"wrong key id", "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"},
		{"other name", "PaulNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"},
		{"short key id", "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"},
		{"non-hex key id", "PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"},
		{"wrong algorithm", "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"},
		{"short key", "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10"},
		{"bad base64", "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T!"},
		{"empty name", "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"},
		{"space in name", "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := audit.ParseVerifierKey(tt.vkey); err == nil {
				t.Errorf("accepted %q as %s", tt.vkey, v)
			}
		})
	}
}

func TestNewSignerErrors(t *testing.T) {
	key := seededKey(1)
	tests := []struct {
		name, keyName string
		key           ed25519.PrivateKey
	}{
		{"empty name", "", key},
		{"space", "a b", key},
		{"plus", "a+b", key},
		{"newline", "a\nb", key},
		{"no-break space", "a\u00a0b", key},
		{"short key", "a", key[:32]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := audit.NewSigner(tt.keyName, tt.key); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := audit.NewVerifier("a", key.Public().(ed25519.PublicKey)[:31]); err == nil {
		t.Error("NewVerifier accepted a short key")
	}
}

func TestPrivateKeyFile(t *testing.T) {
	key, err := audit.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	pemData, err := audit.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pemData, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("not a PEM PRIVATE KEY: %s", pemData)
	}
	got, err := audit.ParsePrivateKey(pemData)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(got) {
		t.Error("key changed in the round trip")
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte("hello")},
		{"other block type", bytes.Replace(pemData, []byte("PRIVATE KEY"), []byte("PUBLIC KEY"), 2)},
		{"trailing data", append(append([]byte(nil), pemData...), "junk"...)},
		{"corrupt DER", bytes.Replace(pemData, []byte("MC4CAQAw"), []byte("MC4CAQAx"), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := audit.ParsePrivateKey(tt.data); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := audit.GenerateKey(strings.NewReader("short")); err == nil {
		t.Error("GenerateKey with a short random source: no error")
	}
}

func TestCheckpointSignOpen(t *testing.T) {
	s := MustSigner(t, "vitalgate.example/audit", 1)
	c := audit.Checkpoint{Origin: "vitalgate.example/audit", Size: 20852163, Root: audit.LeafHash([]byte("x"))}
	note := MustSign(t, c, s)
	wantText := "vitalgate.example/audit\n20852163\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
	if string(c.Marshal()) != wantText {
		t.Errorf("Marshal = %q, want %q", c.Marshal(), wantText)
	}
	if !strings.HasPrefix(string(note), wantText+"\n— vitalgate.example/audit ") || !strings.HasSuffix(string(note), "\n") {
		t.Errorf("note = %q", note)
	}
	got, err := audit.OpenCheckpoint(note, s.Verifier())
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Errorf("OpenCheckpoint = %v, want %v", got, c)
	}
	if _, err := audit.SignCheckpoint(audit.Checkpoint{Origin: "bad origin"}, s); err == nil {
		t.Error("signed a checkpoint with a space in its origin")
	}
	if _, err := audit.SignCheckpoint(c, nil); err == nil {
		t.Error("signed with no signer")
	}
}

func TestOpenCheckpoint(t *testing.T) {
	s := MustSigner(t, "log.example", 1)
	other := MustSigner(t, "log.example", 2)       // same name, other key
	witness := MustSigner(t, "witness.example", 3) // other name
	v := s.Verifier()
	root := audit.LeafHash([]byte("r"))
	b64 := base64.StdEncoding.EncodeToString(root[:])
	body := "log.example\n5\n" + b64 + "\n"
	// sign returns text signed by each signer, lines in order.
	sign := func(text string, signers ...*audit.Signer) string {
		var lines string
		for _, sg := range signers {
			lines += signText(t, text, sg)
		}
		return text + "\n" + lines
	}
	good := sign(body, s)
	sigLine := good[len(body)+1:]
	tests := []struct {
		name     string
		note     string
		verifier audit.Verifier
		want     error // nil: accepted
	}{
		{"good", good, v, nil},
		{"cosigned by a witness", sign(body, s, witness), v, nil},
		{"witness signature first", sign(body, witness, s), v, nil},
		{"extension lines", sign(body+"ext one\next two\n", s), v, nil},
		{"size zero", sign("log.example\n0\n"+b64+"\n", s), v, nil},
		{"only a witness signature", sign(body, witness), v, audit.ErrUnknownKey},
		{"signed by another key of the same name", sign(body, other), v, audit.ErrUnknownKey},
		{"zero verifier", good, audit.Verifier{}, audit.ErrUnknownKey},
		{"good and bad signature by the key", good + rawSig(s, 64), v, audit.ErrInvalidSignature},
		{"bad and good signature by the key", body + "\n" + rawSig(s, 64) + sigLine, v, audit.ErrInvalidSignature},
		{"changed size", strings.Replace(good, "\n5\n", "\n6\n", 1), v, audit.ErrInvalidSignature},
		{"changed origin", strings.Replace(good, "log.example\n", "log.examplf\n", 1), v, audit.ErrInvalidSignature},
		{"truncated signature", strings.Replace(good, sigLine, sigLine[:len(sigLine)-9]+"AAAA=\n", 1), v, audit.ErrMalformedNote},
		{"signature of 5 bytes", body + "\n" + rawSig(s, 1), v, audit.ErrInvalidSignature},
		{"signature of 4 bytes", body + "\n" + rawSig(s, 0), v, audit.ErrMalformedNote},
		{"no signature", body + "\n", v, audit.ErrMalformedNote},
		{"no blank line", body + sigLine, v, audit.ErrMalformedNote},
		{"no final newline", strings.TrimSuffix(good, "\n"), v, audit.ErrMalformedNote},
		{"hyphen not em dash", strings.Replace(good, "—", "--", 1), v, audit.ErrMalformedNote},
		{"carriage return", strings.Replace(good, "\n5\n", "\n5\r\n", 1), v, audit.ErrMalformedNote},
		{"invalid UTF-8", strings.Replace(good, "log.example\n", "log.\xffexample\n", 1), v, audit.ErrMalformedNote},
		{"too few lines", sign("log.example\n5\n", s), v, audit.ErrMalformedNote},
		{"empty extension line", sign(body+"ext\n\nmore\n", s), v, audit.ErrMalformedNote},
		{"leading zero size", sign("log.example\n05\n"+b64+"\n", s), v, audit.ErrMalformedNote},
		{"plus size", sign("log.example\n+5\n"+b64+"\n", s), v, audit.ErrMalformedNote},
		{"negative size", sign("log.example\n-5\n"+b64+"\n", s), v, audit.ErrMalformedNote},
		{"huge size", sign("log.example\n18446744073709551616\n"+b64+"\n", s), v, audit.ErrMalformedNote},
		{"short root", sign("log.example\n5\nAAAA\n", s), v, audit.ErrMalformedNote},
		{"unpadded root", sign("log.example\n5\n"+strings.TrimRight(b64, "=")+"\n", s), v, audit.ErrMalformedNote},
		{"empty origin", sign("\n5\n"+b64+"\n", s), v, audit.ErrMalformedNote},
		{"huge note", good + strings.Repeat("— w AAAAAAAA\n", 1<<17), v, audit.ErrMalformedNote},
		{"too many signatures", sign(body, s) + strings.Repeat("— w AAAAAAAA\n", 100), v, audit.ErrMalformedNote},
		{"bad key name in signature", strings.Replace(good, "— log.example ", "— log+example ", 1), v, audit.ErrMalformedNote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := audit.OpenCheckpoint([]byte(tt.note), tt.verifier)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v\n%s", err, tt.note)
				}
				if c.Origin != "log.example" || c.Root != root {
					t.Errorf("checkpoint = %v", c)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// signText returns the signature line by s over an arbitrary note text (SignCheckpoint signs
// only well-formed checkpoints): it finds the test key behind s by its key id and signs by hand.
func signText(t *testing.T, text string, s *audit.Signer) string {
	t.Helper()
	for seed := byte(0); seed < 8; seed++ {
		k := seededKey(seed)
		if sg, err := audit.NewSigner(s.Name(), k); err == nil && sg.KeyID() == s.KeyID() {
			sig := append([]byte{byte(s.KeyID() >> 24), byte(s.KeyID() >> 16), byte(s.KeyID() >> 8), byte(s.KeyID())},
				ed25519.Sign(k, []byte(text))...)
			return "— " + s.Name() + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
		}
	}
	t.Fatal("unknown test signer")
	return ""
}

// rawSig returns a signature line with s's name and key id and n zero bytes of signature.
func rawSig(s *audit.Signer, n int) string {
	id := s.KeyID()
	sig := append([]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, make([]byte, n)...)
	return "— " + s.Name() + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// FuzzOpenCheckpoint checks that OpenCheckpoint never panics on arbitrary notes and that
// whatever it accepts carries the checkpoint it returns as its first three lines.
func FuzzOpenCheckpoint(f *testing.F) {
	s := MustSigner(f, "log.example", 1)
	good, _ := audit.SignCheckpoint(audit.Checkpoint{Origin: "log.example", Size: 5}, s)
	f.Add(good)
	f.Add([]byte("log.example\n5\nAAAA\n\n— log.example AAAA\n"))
	f.Add([]byte("\n\n— \n"))
	v := s.Verifier()
	f.Fuzz(func(t *testing.T, note []byte) {
		c, err := audit.OpenCheckpoint(note, v)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(note, c.Marshal()) {
			t.Fatalf("accepted %q as %v", note, c)
		}
	})
}
