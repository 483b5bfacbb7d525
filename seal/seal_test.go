package seal_test

import (
	"bytes"
	"crypto/fips140"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/seal"
)

// MustKey returns a random 32-byte key.
func MustKey(tb testing.TB) []byte {
	tb.Helper()
	k := make([]byte, seal.KeySize)
	rand.Read(k)
	return k
}

// MustCipher returns a Cipher or fails the test.
func MustCipher(tb testing.TB, dek []byte, keyID string) *seal.Cipher {
	tb.Helper()
	c, err := seal.NewCipher(dek, keyID)
	if err != nil {
		tb.Fatalf("NewCipher: %v", err)
	}
	return c
}

// MustSeal seals or fails the test.
func MustSeal(tb testing.TB, c *seal.Cipher, plaintext, aad []byte) []byte {
	tb.Helper()
	sealed, err := c.Seal(plaintext, aad, nil)
	if err != nil {
		tb.Fatalf("Seal: %v", err)
	}
	return sealed
}

// countingReader is a deterministic, insecure byte source for tests.
type countingReader struct{ n byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

func skipInFIPSMode(t *testing.T) {
	t.Helper()
	if fips140.Enabled() {
		t.Skip("caller-supplied randomness is refused in FIPS 140-3 mode")
	}
}

// wantOpenError checks err is an EINTERNAL *vitalgate.Error wrapping target.
func wantOpenError(t *testing.T, err, target error) {
	t.Helper()
	if err == nil {
		t.Fatal("got nil error, want failure")
	}
	if code := vitalgate.ErrorCode(err); code != vitalgate.EINTERNAL {
		t.Errorf("ErrorCode = %q, want %q", code, vitalgate.EINTERNAL)
	}
	if msg := vitalgate.ErrorMessage(err); msg != "internal error" {
		t.Errorf("ErrorMessage = %q, want the generic message", msg)
	}
	if !errors.Is(err, target) {
		t.Errorf("error %v does not wrap %v", err, target)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	dek := MustKey(t)
	tests := []struct {
		name      string
		keyID     string
		plaintext []byte
		aad       []byte
	}{
		{"empty plaintext", "dek-1", nil, seal.AAD("Observation", "o1", "1")},
		{"one byte", "dek-1", []byte{0}, seal.AAD("Observation", "o1", "1")},
		{"1 KiB", "p-42", bytes.Repeat([]byte("x"), 1024), seal.AAD("Patient", "p42", "7")},
		{"nil aad", "dek-1", []byte(`{"resourceType":"Patient"}`), nil},
		{"longest key id", strings.Repeat("k", seal.MaxKeyIDLen), []byte("hello"), []byte("aad")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := MustCipher(t, dek, tt.keyID)
			sealed := MustSeal(t, c, tt.plaintext, tt.aad)
			if got, want := len(sealed), 2+len(tt.keyID)+12+len(tt.plaintext)+16; got != want {
				t.Errorf("len(sealed) = %d, want %d", got, want)
			}
			if len(tt.plaintext) >= 8 && bytes.Contains(sealed, tt.plaintext) {
				t.Error("sealed contains the plaintext")
			}
			if id, err := seal.SealedKeyID(sealed); err != nil || id != tt.keyID {
				t.Errorf("SealedKeyID = %q, %v; want %q", id, err, tt.keyID)
			}
			got, err := c.Open(sealed, tt.aad)
			if err != nil || !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Cipher.Open = %q, %v; want %q", got, err, tt.plaintext)
			}
			// The function forms interoperate with the Cipher.
			sealed2, err := seal.Seal(dek, tt.keyID, tt.plaintext, tt.aad, rand.Reader)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if bytes.Equal(sealed, sealed2) {
				t.Error("two seals of the same plaintext are equal: nonce reused")
			}
			for _, s := range [][]byte{sealed, sealed2} {
				if got, err := seal.Open(dek, s, tt.aad); err != nil || !bytes.Equal(got, tt.plaintext) {
					t.Errorf("Open = %q, %v; want %q", got, err, tt.plaintext)
				}
			}
		})
	}
}

func TestOpenFailures(t *testing.T) {
	dek := MustKey(t)
	aad := seal.AAD("Observation", "o1", "3")
	c := MustCipher(t, dek, "dek-1")
	sealed := MustSeal(t, c, []byte("heart rate 72/min"), aad)
	// rehead returns sealed with its key id replaced.
	rehead := func(id string) []byte {
		return append(append([]byte{sealed[0], byte(len(id))}, id...), sealed[2+len("dek-1"):]...)
	}
	tests := []struct {
		name   string
		dek    []byte
		sealed []byte
		aad    []byte
	}{
		{"wrong aad", dek, sealed, seal.AAD("Observation", "o1", "4")},
		{"nil aad", dek, sealed, nil},
		{"aad parts shifted", dek, sealed, seal.AAD("Observatio", "no1", "3")},
		{"wrong key", MustKey(t), sealed, aad},
		{"key id changed, same length", dek, rehead("dek-2"), aad},
		{"key id changed, other length", dek, rehead("dek-10"), aad},
		{"version changed", dek, append([]byte{2}, sealed[1:]...), aad},
		{"nil", dek, nil, aad},
		{"version only", dek, sealed[:1], aad},
		{"header only", dek, sealed[:2+len("dek-1")], aad},
		{"no tag", dek, sealed[:len(sealed)-16], aad},
		{"one byte short", dek, sealed[:len(sealed)-1], aad},
		{"one byte long", dek, append(bytes.Clone(sealed), 0), aad},
		{"zero key id length", dek, append([]byte{1, 0}, sealed[7:]...), aad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := seal.Open(tt.dek, tt.sealed, tt.aad)
			wantOpenError(t, err, seal.ErrOpen)
			if got != nil {
				t.Errorf("Open returned plaintext %q on failure", got)
			}
			// A Cipher holding the key under the id the header now names fails the same way.
			if id, err := seal.SealedKeyID(tt.sealed); err == nil {
				_, err := MustCipher(t, tt.dek, id).Open(tt.sealed, tt.aad)
				wantOpenError(t, err, seal.ErrOpen)
			}
		})
	}
}

func TestOpenTamperedByte(t *testing.T) {
	dek := MustKey(t)
	aad := seal.AAD("Patient", "p1", "1")
	c := MustCipher(t, dek, "dek-1")
	sealed := MustSeal(t, c, bytes.Repeat([]byte{0xA5}, 100), aad)
	for i := range sealed {
		for _, mask := range []byte{0x01, 0x80, 0xFF} {
			t.Run(fmt.Sprintf("byte %d mask %#x", i, mask), func(t *testing.T) {
				tampered := bytes.Clone(sealed)
				tampered[i] ^= mask
				if _, err := seal.Open(dek, tampered, aad); err == nil {
					t.Fatal("Open accepted a tampered ciphertext")
				}
				if _, err := c.Open(tampered, aad); err == nil {
					t.Fatal("Cipher.Open accepted a tampered ciphertext")
				}
			})
		}
	}
}

func TestCipherOpenUnknownKeyID(t *testing.T) {
	dek := MustKey(t)
	sealed := MustSeal(t, MustCipher(t, dek, "dek-b"), []byte("x"), nil)
	tests := []struct {
		name  string
		keyID string
	}{
		{"other id", "dek-a"},
		{"prefix of id", "dek-"},
		{"longer id", "dek-bb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MustCipher(t, dek, tt.keyID).Open(sealed, nil)
			wantOpenError(t, err, seal.ErrUnknownKey)
		})
	}
}

func TestNewCipherRejects(t *testing.T) {
	tests := []struct {
		name  string
		dek   []byte
		keyID string
	}{
		{"nil key", nil, "dek-1"},
		{"16-byte key", make([]byte, 16), "dek-1"},
		{"33-byte key", make([]byte, 33), "dek-1"},
		{"empty key id", make([]byte, 32), ""},
		{"key id too long", make([]byte, 32), strings.Repeat("k", seal.MaxKeyIDLen+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := seal.NewCipher(tt.dek, tt.keyID); vitalgate.ErrorCode(err) != vitalgate.EINTERNAL {
				t.Errorf("NewCipher error = %v, want EINTERNAL", err)
			}
			if _, err := seal.Seal(tt.dek, tt.keyID, []byte("x"), nil, nil); err == nil {
				t.Error("Seal succeeded")
			}
		})
	}
}

func TestSealedKeyID(t *testing.T) {
	tests := []struct {
		name    string
		sealed  []byte
		want    string
		wantErr bool
	}{
		{"valid", []byte("\x01\x05dek-9rest"), "dek-9", false},
		{"header only", []byte("\x01\x01k"), "k", false},
		{"empty", nil, "", true},
		{"unknown version", []byte("\x02\x05dek-9rest"), "", true},
		{"zero-length id", []byte("\x01\x00rest"), "", true},
		{"id truncated", []byte("\x01\x09dek-9"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := seal.SealedKeyID(tt.sealed)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("SealedKeyID = %q, %v; want %q, error %t", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestAAD(t *testing.T) {
	tests := []struct {
		name string
		a, b [3]string
	}{
		{"boundary between type and id", [3]string{"a", "bc", "1"}, [3]string{"ab", "c", "1"}},
		{"boundary between id and version", [3]string{"T", "ab", "c"}, [3]string{"T", "a", "bc"}},
		{"empty part moved", [3]string{"", "x", "y"}, [3]string{"x", "", "y"}},
		{"version differs", [3]string{"Patient", "p1", "1"}, [3]string{"Patient", "p1", "2"}},
		{"length byte lookalike", [3]string{"\x01a", "", ""}, [3]string{"", "a", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := seal.AAD(tt.a[0], tt.a[1], tt.a[2])
			b := seal.AAD(tt.b[0], tt.b[1], tt.b[2])
			if bytes.Equal(a, b) {
				t.Errorf("AAD%q == AAD%q = %q", tt.a, tt.b, a)
			}
			if again := seal.AAD(tt.a[0], tt.a[1], tt.a[2]); !bytes.Equal(a, again) {
				t.Error("AAD is not deterministic")
			}
		})
	}
}

func TestSealRandomness(t *testing.T) {
	skipInFIPSMode(t)
	dek := MustKey(t)
	tests := []struct {
		name    string
		rnd     func() io.Reader
		wantErr bool
	}{
		{"deterministic reader", func() io.Reader { return &countingReader{} }, false},
		{"failing reader", func() io.Reader { return failingReader{} }, true},
		{"short reader", func() io.Reader { return bytes.NewReader(make([]byte, 5)) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := MustCipher(t, dek, "dek-1")
			s1, err1 := c.Seal([]byte("payload"), nil, tt.rnd())
			s2, err2 := c.Seal([]byte("payload"), nil, tt.rnd())
			if tt.wantErr {
				if err1 == nil || err2 == nil {
					t.Fatalf("Seal succeeded with a broken reader")
				}
				return
			}
			if err1 != nil || err2 != nil {
				t.Fatalf("Seal: %v, %v", err1, err2)
			}
			if !bytes.Equal(s1, s2) {
				t.Error("the same reader state gave different ciphertexts: rnd not used for the nonce")
			}
			if got, err := c.Open(s1, nil); err != nil || string(got) != "payload" {
				t.Errorf("Open = %q, %v", got, err)
			}
		})
	}
}

func TestCipherConcurrent(t *testing.T) {
	c := MustCipher(t, MustKey(t), "dek-1")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				pt := fmt.Appendf(nil, "g%d-%d", i, j)
				aad := seal.AAD("Observation", string(pt), "1")
				s, err := c.Seal(pt, aad, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := c.Open(s, aad); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Open = %q, %v; want %q", got, err, pt)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestCipherFormatNoKeyMaterial(t *testing.T) {
	dek := MustKey(t)
	c := MustCipher(t, dek, "dek-7")
	got := fmt.Sprintf("%v %+v %#v %s %x %d", c, c, c, c, c, *c)
	if want := "seal.Cipher{key: dek-7}"; !strings.Contains(got, want) {
		t.Errorf("formatted Cipher = %q, want it to contain %q", got, want)
	}
	assertNoKey(t, got, dek)
}

func FuzzOpen(f *testing.F) {
	dek := make([]byte, seal.KeySize) // fixed, so seeds stay valid across runs
	c, err := seal.NewCipher(dek, "dek-1")
	if err != nil {
		f.Fatal(err)
	}
	aad := seal.AAD("Observation", "o1", "1")
	valid, err := c.Seal([]byte("seed"), aad, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, aad)
	f.Add(valid[:len(valid)-1], aad)
	f.Add([]byte{1, 5}, []byte(nil))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		pt, err := seal.Open(dek, sealed, aad)
		pt2, err2 := c.Open(sealed, aad)
		if (err == nil) != (err2 == nil) || !bytes.Equal(pt, pt2) {
			t.Fatalf("Open and Cipher.Open disagree: %q, %v vs %q, %v", pt, err, pt2, err2)
		}
		if err != nil {
			return
		}
		// Whatever opens must re-seal and open to the same plaintext.
		resealed, err := c.Seal(pt, aad, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.Open(resealed, aad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("round trip = %q, %v; want %q", got, err, pt)
		}
		seal.SealedKeyID(sealed)
	})
}

func FuzzSealOpen(f *testing.F) {
	f.Add([]byte("hello"), []byte("aad"), "dek-1")
	f.Add([]byte{}, []byte{}, "k")
	f.Fuzz(func(t *testing.T, plaintext, aad []byte, keyID string) {
		dek := make([]byte, seal.KeySize)
		c, err := seal.NewCipher(dek, keyID)
		if err != nil {
			if keyID != "" && len(keyID) <= seal.MaxKeyIDLen {
				t.Fatalf("NewCipher(%q): %v", keyID, err)
			}
			return
		}
		sealed, err := c.Seal(plaintext, aad, nil)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := seal.SealedKeyID(sealed); err != nil || id != keyID {
			t.Fatalf("SealedKeyID = %q, %v; want %q", id, err, keyID)
		}
		if got, err := seal.Open(dek, sealed, aad); err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("Open = %q, %v; want %q", got, err, plaintext)
		}
		if _, err := seal.Open(dek, sealed, append(bytes.Clone(aad), 0)); err == nil {
			t.Fatal("Open accepted extended aad")
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	c := MustCipher(b, MustKey(b), "dek-1")
	pt := bytes.Repeat([]byte("v"), 1024)
	aad := seal.AAD("Observation", "0b8f6a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "12")
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Seal(pt, aad, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	c := MustCipher(b, MustKey(b), "dek-1")
	pt := bytes.Repeat([]byte("v"), 1024)
	aad := seal.AAD("Observation", "0b8f6a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "12")
	sealed := MustSeal(b, c, pt, aad)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Open(sealed, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCustomRandRefusedInFIPSMode(t *testing.T) {
	if !fips140.Enabled() {
		t.Skip("only in FIPS 140-3 mode (GODEBUG=fips140=on)")
	}
	c := MustCipher(t, MustKey(t), "dek-1")
	if _, err := c.Seal([]byte("x"), nil, &countingReader{}); err == nil {
		t.Error("Seal accepted a caller-supplied reader in FIPS mode")
	}
	if _, err := seal.NewKey(&countingReader{}); err == nil {
		t.Error("NewKey accepted a caller-supplied reader in FIPS mode")
	}
}
