package seal_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/seal"
)

// MustKeyring builds a keyring of fresh random keys for the KEK generations gens (default
// 1) and returns it with its keys by name ("index", "kek-1", ...).
func MustKeyring(tb testing.TB, gens ...int) (*seal.Keyring, map[string][]byte) {
	tb.Helper()
	if len(gens) == 0 {
		gens = []int{1}
	}
	keys := map[string][]byte{}
	var keks []seal.KEK
	for _, g := range gens {
		k, err := seal.NewKey(nil)
		if err != nil {
			tb.Fatal(err)
		}
		keys[seal.KEKID(g)] = k
		keks = append(keks, seal.KEK{Generation: g, Key: k})
	}
	index, err := seal.NewKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	keys["index"] = index
	kr, err := seal.NewKeyring(keks, index)
	if err != nil {
		tb.Fatalf("NewKeyring: %v", err)
	}
	return kr, keys
}

// withKEK returns a keyring of keys plus one more KEK generation (a rotation).
func withKEK(tb testing.TB, keys map[string][]byte, gen int) *seal.Keyring {
	tb.Helper()
	var keks []seal.KEK
	for name, k := range keys {
		var g int
		if _, err := fmt.Sscanf(name, "kek-%d", &g); err == nil {
			keks = append(keks, seal.KEK{Generation: g, Key: k})
		}
	}
	k, err := seal.NewKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	keys[seal.KEKID(gen)] = k
	kr, err := seal.NewKeyring(append(keks, seal.KEK{Generation: gen, Key: k}), keys["index"])
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}

// assertNoKey fails if s contains key in any common encoding.
func assertNoKey(tb testing.TB, s string, key []byte) {
	tb.Helper()
	for _, enc := range []string{
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key),
		hex.EncodeToString(key),
		strings.ToUpper(hex.EncodeToString(key)),
		strings.Trim(fmt.Sprint(key), "[]"), // decimal bytes, as %v and %d print them
		string(key),
	} {
		if strings.Contains(s, enc) {
			tb.Fatalf("output contains key material: %q", s)
		}
	}
}

func TestNewKeyring(t *testing.T) {
	key := func() []byte { k, _ := seal.NewKey(nil); return k }
	k1, k2, idx := key(), key(), key()
	tests := []struct {
		name    string
		keks    []seal.KEK
		index   []byte
		wantIDs []string // nil: an error
	}{
		{"one KEK", []seal.KEK{{1, k1}}, idx, []string{"kek-1"}},
		{"generations sort numerically", []seal.KEK{{10, k1}, {9, k2}}, idx, []string{"kek-9", "kek-10"}},
		{"no KEK", nil, idx, nil},
		{"generation zero", []seal.KEK{{0, k1}}, idx, nil},
		{"generation twice", []seal.KEK{{2, k1}, {2, k2}}, idx, nil},
		{"short KEK", []seal.KEK{{1, k1[:31]}}, idx, nil},
		{"short index key", []seal.KEK{{1, k1}}, idx[:16], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := seal.NewKeyring(tt.keks, tt.index)
			if tt.wantIDs == nil {
				if vitalgate.ErrorCode(err) != vitalgate.EINTERNAL {
					t.Fatalf("NewKeyring error = %v, want EINTERNAL", err)
				}
				for _, k := range [][]byte{k1, k2, idx} {
					assertNoKey(t, err.Error(), k)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := kr.KEKIDs(); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("KEKIDs = %q, want %q", got, tt.wantIDs)
			}
			if got, want := kr.CurrentKEKID(), tt.wantIDs[len(tt.wantIDs)-1]; got != want || seal.KEKID(kr.CurrentGeneration()) != want {
				t.Errorf("CurrentKEKID = %q (generation %d), want %q", got, kr.CurrentGeneration(), want)
			}
			if !kr.HasKEK(tt.wantIDs[0]) || kr.HasKEK("kek-99") {
				t.Error("HasKEK is wrong")
			}
		})
	}
	t.Run("the caller's slices may be cleared", func(t *testing.T) {
		a, b := bytes.Clone(k1), bytes.Clone(idx)
		kr, err := seal.NewKeyring([]seal.KEK{{1, a}}, b)
		if err != nil {
			t.Fatal(err)
		}
		aad := []byte("p")
		_, w, err := kr.NewDataKey(aad, nil)
		if err != nil {
			t.Fatal(err)
		}
		before := kr.BlindIndex(seal.DomainPatient, "x")
		clear(a)
		clear(b)
		if _, err := kr.UnwrapDataKey(w, aad); err != nil {
			t.Errorf("unwrap after clearing the caller's KEK: %v", err)
		}
		if !bytes.Equal(kr.BlindIndex(seal.DomainPatient, "y"), kr.BlindIndex(seal.DomainPatient, "y")) || !bytes.Equal(before, kr.BlindIndex(seal.DomainPatient, "x")) {
			t.Error("blind index changed after clearing the caller's index key")
		}
	})
}

func TestDataKeyRoundTrip(t *testing.T) {
	kr, _ := MustKeyring(t)
	tests := []struct {
		name string
		aad  []byte
	}{
		{"blind index aad", kr.BlindIndex(seal.DomainPatient, "p-1")},
		{"empty aad", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dek, wrapped, err := kr.NewDataKey(tt.aad, nil)
			if err != nil {
				t.Fatalf("NewDataKey: %v", err)
			}
			if len(dek) != seal.KeySize {
				t.Fatalf("len(dek) = %d", len(dek))
			}
			if bytes.Contains(wrapped, dek) {
				t.Fatal("wrapped contains the data key")
			}
			if id, err := seal.SealedKeyID(wrapped); err != nil || id != "kek-1" {
				t.Errorf("SealedKeyID(wrapped) = %q, %v; want kek-1", id, err)
			}
			got, err := kr.UnwrapDataKey(wrapped, tt.aad)
			if err != nil || !bytes.Equal(got, dek) {
				t.Fatalf("UnwrapDataKey = %x, %v", got, err)
			}
			// The data key works for resources, and a wrapped key is no sealed resource.
			sealed, err := seal.Seal(dek, "kek-1", []byte("x"), tt.aad, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kr.UnwrapDataKey(sealed, tt.aad); err == nil {
				t.Error("UnwrapDataKey accepted a sealed resource")
			}
		})
	}
}

func TestUnwrapDataKeyFailures(t *testing.T) {
	kr, keys := MustKeyring(t)
	aad := kr.BlindIndex(seal.DomainPatient, "p-1")
	_, wrapped, err := kr.NewDataKey(aad, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherKR, _ := MustKeyring(t) // same KEK id, different key
	kr2 := withKEK(t, keys, 2)
	rehead := func(id string) []byte {
		return append(append([]byte{wrapped[0], byte(len(id))}, id...), wrapped[2+len("kek-1"):]...)
	}
	tests := []struct {
		name    string
		wrapped []byte
		aad     []byte
		target  error
	}{
		{"wrong aad", wrapped, kr.BlindIndex(seal.DomainPatient, "p-2"), seal.ErrOpen},
		{"nil aad", wrapped, nil, seal.ErrOpen},
		{"unknown KEK", rehead("kek-9"), aad, seal.ErrUnknownKey},
		{"header moved to another KEK", rehead("kek-2"), aad, seal.ErrOpen},
		{"truncated", wrapped[:len(wrapped)-1], aad, seal.ErrOpen},
		{"empty", nil, aad, seal.ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kr2.UnwrapDataKey(tt.wrapped, tt.aad)
			wantOpenError(t, err, tt.target)
			_, _, err = kr2.RewrapDataKey(tt.wrapped, tt.aad, nil)
			wantOpenError(t, err, tt.target)
		})
	}
	t.Run("tampered byte", func(t *testing.T) {
		for i := range wrapped {
			tampered := bytes.Clone(wrapped)
			tampered[i] ^= 0x01
			if _, err := kr2.UnwrapDataKey(tampered, aad); err == nil {
				t.Errorf("UnwrapDataKey accepted wrapped key with byte %d flipped", i)
			}
		}
	})
	t.Run("other keyring", func(t *testing.T) {
		_, err := otherKR.UnwrapDataKey(wrapped, aad)
		wantOpenError(t, err, seal.ErrOpen)
	})
}

func TestBlindIndex(t *testing.T) {
	kr, keys := MustKeyring(t)
	other, _ := MustKeyring(t)
	indexKey := keys["index"]
	// want is the specification: HMAC-SHA-256 under HKDF-SHA-256(index key, info).
	want := func(domain, value string) []byte {
		sub, err := hkdf.Key(sha256.New, indexKey, nil, "vitalgate blind index v1 "+domain, 32)
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, sub)
		m.Write([]byte(value))
		return m.Sum(nil)
	}
	tests := []struct {
		name   string
		domain string
		value  string
	}{
		{"patient", seal.DomainPatient, "p-123"},
		{"code", seal.DomainCode, "http://loinc.org|8867-4"},
		{"identifier", seal.DomainIdentifier, "urn:oid:1.2.3|MRN-0042"},
		{"device", seal.DomainDevice, "SN-99"},
		{"empty value", seal.DomainPatient, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := kr.BlindIndex(tt.domain, tt.value)
			if len(got) != seal.BlindIndexSize {
				t.Errorf("len = %d, want %d", len(got), seal.BlindIndexSize)
			}
			if w := want(tt.domain, tt.value); !bytes.Equal(got, w) {
				t.Errorf("BlindIndex = %x, want %x", got, w)
			}
			if again := kr.BlindIndex(tt.domain, tt.value); !bytes.Equal(got, again) {
				t.Error("BlindIndex is not deterministic")
			}
			if fn := kr.BlindIndexer(tt.domain); !bytes.Equal(fn(tt.value), got) {
				t.Error("BlindIndexer disagrees with BlindIndex")
			}
			if bytes.Equal(other.BlindIndex(tt.domain, tt.value), got) {
				t.Error("two index keys give the same blind index")
			}
			for _, d := range []string{seal.DomainPatient, seal.DomainCode, seal.DomainIdentifier, seal.DomainDevice} {
				if d != tt.domain && bytes.Equal(kr.BlindIndex(d, tt.value), got) {
					t.Errorf("domains %q and %q give the same blind index", d, tt.domain)
				}
			}
			if tt.value != "" && bytes.Equal(kr.BlindIndex(tt.domain, tt.value+" "), got) {
				t.Error("different values give the same blind index")
			}
		})
	}
}

func TestBlindIndexConcurrent(t *testing.T) {
	kr, _ := MustKeyring(t)
	want := kr.BlindIndex(seal.DomainIdentifier, "MRN-1")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got := kr.BlindIndex(seal.DomainIdentifier, "MRN-1"); !bytes.Equal(got, want) {
					t.Error("concurrent BlindIndex differs")
					return
				}
				kr.BlindIndex(seal.DomainDevice, "SN")
			}
		})
	}
	wg.Wait()
}

func TestKeyringFormatNoKeyMaterial(t *testing.T) {
	_, keys := MustKeyring(t)
	kr := withKEK(t, keys, 2)
	kr.BlindIndex(seal.DomainPatient, "warm the subkey cache")
	tests := []struct {
		name   string
		format string
		arg    any
		want   string
	}{
		{"pointer, all verbs", "%v %+v %#v %s %q %x %X %d", kr, ""},
		{"value, all verbs", "%v %+v %#v %s %q %x %X %d", *kr, ""},
		{"String", "%s", kr.String(), "seal.Keyring{current: kek-2, keks: 2}"},
		{"GoString", "%s", kr.GoString(), "seal.Keyring{current: kek-2, keks: 2}"},
		{"nested", "%+v", struct{ K *seal.Keyring }{kr}, ""},
		{"in a slice", "%v", []seal.Keyring{*kr}, "[seal.Keyring{current: kek-2, keks: 2}]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fmt.Sprintf(tt.format, tt.arg)
			if tt.want != "" && got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			for _, k := range keys {
				assertNoKey(t, got, k)
			}
		})
	}
}

func BenchmarkBlindIndex(b *testing.B) {
	kr, _ := MustKeyring(b)
	b.ReportAllocs()
	for b.Loop() {
		kr.BlindIndex(seal.DomainIdentifier, "urn:oid:2.16.840.1.113883.2.4.6.3|123456782")
	}
}
