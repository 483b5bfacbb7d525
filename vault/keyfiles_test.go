package vault_test

import (
	"bytes"
	"crypto/fips140"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/seal"
	"github.com/vitalgate/vitalgate/vault"
)

// MustKeyring creates a keyring in a fresh keys/ directory and returns both.
func MustKeyring(tb testing.TB) (*seal.Keyring, string) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "keys")
	kr, err := vault.CreateKeyring(dir, nil)
	if err != nil {
		tb.Fatalf("CreateKeyring: %v", err)
	}
	return kr, dir
}

// MustReadKey decodes a key file written by the package.
func MustReadKey(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		tb.Errorf("%s does not end in a newline", path)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(data), "\n"))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return key
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

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

func skipInFIPSMode(t *testing.T) {
	t.Helper()
	if fips140.Enabled() {
		t.Skip("caller-supplied randomness is refused in FIPS 140-3 mode")
	}
}

func TestCreateKeyring(t *testing.T) {
	kr, dir := MustKeyring(t)
	if got := kr.CurrentKEKID(); got != "kek-1" {
		t.Errorf("CurrentKEKID = %q, want kek-1", got)
	}
	if got := kr.KEKIDs(); !slices.Equal(got, []string{"kek-1"}) {
		t.Errorf("KEKIDs = %q, want [kek-1]", got)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("dir mode = %#o, want 0700", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"index.key", "kek-1.key"}; !slices.Equal(names, want) {
		t.Errorf("dir holds %q, want %q", names, want)
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode = %#o, want 0600", name, perm)
		}
		if key := MustReadKey(t, path); len(key) != seal.KeySize {
			t.Errorf("%s holds %d bytes, want %d", name, len(key), seal.KeySize)
		}
	}
	if bytes.Equal(MustReadKey(t, filepath.Join(dir, "index.key")), MustReadKey(t, filepath.Join(dir, "kek-1.key"))) {
		t.Error("index key equals KEK")
	}
}

func TestCreateKeyringTightensDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.CreateKeyring(dir, nil); err != nil {
		t.Fatalf("CreateKeyring: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

func TestCreateKeyringRefusesExisting(t *testing.T) {
	tests := []struct {
		name     string
		existing []string
	}{
		{"full keyring", []string{"index.key", "kek-1.key"}},
		{"index key only", []string{"index.key"}},
		{"later KEK only", []string{"kek-3.key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range tt.existing {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("precious\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := vault.CreateKeyring(dir, nil)
			if code := vitalgate.ErrorCode(err); code != vitalgate.ECONFLICT {
				t.Fatalf("CreateKeyring error = %v, want code %q", err, vitalgate.ECONFLICT)
			}
			for _, name := range tt.existing {
				if data, _ := os.ReadFile(filepath.Join(dir, name)); string(data) != "precious\n" {
					t.Errorf("%s was overwritten", name)
				}
			}
		})
	}
}

func TestCreateKeyringBrokenRandomness(t *testing.T) {
	skipInFIPSMode(t)
	dir := t.TempDir()
	if _, err := vault.CreateKeyring(dir, failingReader{}); err == nil {
		t.Fatal("CreateKeyring succeeded with a failing reader")
	}
}

func TestLoadKeyring(t *testing.T) {
	kekB64 := func(n int) []byte {
		return []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(n)}, seal.KeySize)) + "\n")
	}
	write := func(t *testing.T, dir, name string, data []byte, mode os.FileMode) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is subject to umask
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		mutate  func(t *testing.T, dir string)
		wantErr string // "" means Load succeeds
		wantIDs []string
	}{
		{"as created", func(*testing.T, string) {}, "", []string{"kek-1"}},
		{"KEK mode 0644", func(t *testing.T, dir string) {
			os.Chmod(filepath.Join(dir, "kek-1.key"), 0o644)
		}, "must not be accessible by group or others", nil},
		{"index mode 0640", func(t *testing.T, dir string) {
			os.Chmod(filepath.Join(dir, "index.key"), 0o640)
		}, "must not be accessible by group or others", nil},
		{"KEK mode 0604", func(t *testing.T, dir string) {
			os.Chmod(filepath.Join(dir, "kek-1.key"), 0o604)
		}, "chmod 600", nil},
		{"dir writable by others", func(t *testing.T, dir string) {
			os.Chmod(dir, 0o777)
		}, "must not be writable by group or others", nil},
		{"short KEK", func(t *testing.T, dir string) {
			write(t, dir, "kek-2.key", []byte(base64.StdEncoding.EncodeToString(make([]byte, 31))+"\n"), 0o600)
		}, "holds a 31-byte key, want 32 bytes", nil},
		{"long index key", func(t *testing.T, dir string) {
			write(t, dir, "index.key", []byte(base64.StdEncoding.EncodeToString(make([]byte, 33))+"\n"), 0o600)
		}, "holds a 33-byte key", nil},
		{"empty KEK", func(t *testing.T, dir string) {
			write(t, dir, "kek-2.key", nil, 0o600)
		}, "holds a 0-byte key", nil},
		{"not base64", func(t *testing.T, dir string) {
			write(t, dir, "kek-2.key", []byte("not a key, just words!!\n"), 0o600)
		}, "does not hold a base64-encoded key", nil},
		{"raw key bytes", func(t *testing.T, dir string) {
			write(t, dir, "kek-2.key", make([]byte, 32), 0o600)
		}, "does not hold a base64-encoded key", nil},
		{"huge file", func(t *testing.T, dir string) {
			write(t, dir, "kek-2.key", bytes.Repeat([]byte("A"), 4096), 0o600)
		}, "too large", nil},
		{"index key missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "index.key"))
		}, "holds no index.key", nil},
		{"no KEK", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "kek-1.key"))
		}, "holds no KEK", nil},
		{"leading zero", func(t *testing.T, dir string) {
			write(t, dir, "kek-02.key", kekB64(2), 0o600)
		}, "unexpected key file", nil},
		{"generation zero", func(t *testing.T, dir string) {
			write(t, dir, "kek-0.key", kekB64(2), 0o600)
		}, "unexpected key file", nil},
		{"not a number", func(t *testing.T, dir string) {
			write(t, dir, "kek-new.key", kekB64(2), 0o600)
		}, "unexpected key file", nil},
		{"KEK is a directory", func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, "kek-2.key"), 0o700)
		}, "not a regular file", nil},
		{"generations sort numerically", func(t *testing.T, dir string) {
			write(t, dir, "kek-10.key", kekB64(10), 0o600)
			write(t, dir, "kek-9.key", kekB64(9), 0o600)
		}, "", []string{"kek-1", "kek-9", "kek-10"}},
		{"retired generation", func(t *testing.T, dir string) {
			write(t, dir, "kek-3.key", kekB64(3), 0o600)
			os.Remove(filepath.Join(dir, "kek-1.key"))
		}, "", []string{"kek-3"}},
		{"CRLF line end", func(t *testing.T, dir string) {
			write(t, dir, "kek-2.key", bytes.Replace(kekB64(2), []byte("\n"), []byte("\r\n"), 1), 0o600)
		}, "", []string{"kek-1", "kek-2"}},
		{"leftover temporary file ignored", func(t *testing.T, dir string) {
			write(t, dir, ".kek-2.key.tmp-123", []byte("half"), 0o600)
			write(t, dir, "README", []byte("keys"), 0o644)
		}, "", []string{"kek-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir := MustKeyring(t)
			keys := [][]byte{MustReadKey(t, filepath.Join(dir, "kek-1.key")), MustReadKey(t, filepath.Join(dir, "index.key"))}
			tt.mutate(t, dir)
			kr, err := vault.LoadKeyring(dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadKeyring: %v", err)
				}
				if got := kr.KEKIDs(); !slices.Equal(got, tt.wantIDs) {
					t.Errorf("KEKIDs = %q, want %q", got, tt.wantIDs)
				}
				if got, want := kr.CurrentKEKID(), tt.wantIDs[len(tt.wantIDs)-1]; got != want {
					t.Errorf("CurrentKEKID = %q, want %q", got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadKeyring succeeded, want error containing %q", tt.wantErr)
			}
			if code := vitalgate.ErrorCode(err); code != vitalgate.EINTERNAL {
				t.Errorf("ErrorCode = %q, want %q", code, vitalgate.EINTERNAL)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			for _, k := range keys {
				assertNoKey(t, err.Error(), k)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	kr1, dir := MustKeyring(t)
	aad := kr1.BlindIndex(seal.DomainPatient, "p-1")
	dek, wrapped1, err := kr1.NewDataKey(aad, nil)
	if err != nil {
		t.Fatal(err)
	}
	kr2, err := vault.AddKEK(dir, nil)
	if err != nil {
		t.Fatalf("AddKEK: %v", err)
	}
	if got := kr2.CurrentKEKID(); got != "kek-2" {
		t.Fatalf("CurrentKEKID after AddKEK = %q, want kek-2", got)
	}
	if got := kr2.KEKIDs(); !slices.Equal(got, []string{"kek-1", "kek-2"}) {
		t.Errorf("KEKIDs = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, "kek-2.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kek-2.key: %v, %v; want mode 0600", fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("dir holds %d entries, want 3 (no temporary files left)", len(entries))
	}
	if !bytes.Equal(kr1.BlindIndex(seal.DomainPatient, "p-1"), kr2.BlindIndex(seal.DomainPatient, "p-1")) {
		t.Error("blind index changed with KEK rotation")
	}

	steps := []struct {
		name        string
		kr          *seal.Keyring
		wantChanged bool
		wantKEK     string
	}{
		{"first rewrap moves to kek-2", kr2, true, "kek-2"},
		{"second rewrap is a no-op", kr2, false, "kek-2"},
	}
	wrapped := wrapped1
	if got, err := kr2.UnwrapDataKey(wrapped, aad); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("UnwrapDataKey of kek-1 key after rotation = %x, %v", got, err)
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			newWrapped, changed, err := st.kr.RewrapDataKey(wrapped, aad, nil)
			if err != nil {
				t.Fatalf("RewrapDataKey: %v", err)
			}
			if changed != st.wantChanged {
				t.Errorf("changed = %t, want %t", changed, st.wantChanged)
			}
			if !changed && !bytes.Equal(newWrapped, wrapped) {
				t.Error("unchanged rewrap returned different bytes")
			}
			if id, _ := seal.SealedKeyID(newWrapped); id != st.wantKEK {
				t.Errorf("rewrapped under %q, want %q", id, st.wantKEK)
			}
			if got, err := st.kr.UnwrapDataKey(newWrapped, aad); err != nil || !bytes.Equal(got, dek) {
				t.Errorf("UnwrapDataKey(rewrapped) = %x, %v", got, err)
			}
			wrapped = newWrapped
		})
	}
	// The old keyring lacks kek-2; new data keys use kek-2; a third generation follows.
	if _, err := kr1.UnwrapDataKey(wrapped, aad); !errors.Is(err, seal.ErrUnknownKey) {
		t.Errorf("old keyring unwrap error = %v, want ErrUnknownKey", err)
	}
	if _, w, err := kr2.NewDataKey(aad, nil); err != nil {
		t.Error(err)
	} else if id, _ := seal.SealedKeyID(w); id != "kek-2" {
		t.Errorf("NewDataKey wrapped under %q, want kek-2", id)
	}
	kr3, err := vault.AddKEK(dir, nil)
	if err != nil || kr3.CurrentKEKID() != "kek-3" {
		t.Fatalf("second AddKEK = %v, %v; want kek-3", kr3, err)
	}
}

func TestAddKEKRefusesBadKeyring(t *testing.T) {
	_, dir := MustKeyring(t)
	if err := os.Chmod(filepath.Join(dir, "kek-1.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.AddKEK(dir, nil); err == nil {
		t.Fatal("AddKEK succeeded on an unsafe keyring")
	}
	if _, err := os.Stat(filepath.Join(dir, "kek-2.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("kek-2.key written anyway: %v", err)
	}
}
