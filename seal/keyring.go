package seal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/vitalgate/vitalgate"
)

const (
	indexKeyFile = "index.key"
	kekPrefix    = "kek-"
	keySuffix    = ".key"
	maxKeyFile   = 1024 // a key file is 45 bytes; anything much larger is not one
)

// Keyring holds the key-encryption keys (KEKs) that wrap data keys, and the blind-index
// key. KEKs are numbered generations with ids "kek-1", "kek-2", ...; the highest
// generation is current and wraps new data keys, older ones only unwrap. The index key
// never rotates: rotating it would break every blind index.
//
// A Keyring is immutable apart from an internal cache and is safe for concurrent use.
// Obtain one with [CreateKeyring], [LoadKeyring] or [AddKEK]. It keeps no raw KEKs, and
// its String, GoString and Format methods print only key ids.
type Keyring struct {
	ids   []string            // ascending generation; the last is current
	keks  map[string]*aeadKey // by id
	index *indexKeys
}

// CreateKeyring creates a new keyring in dir (the data directory's keys/ folder): a first
// KEK, kek-1.key, and the blind-index key, index.key, each holding the base64-encoded key
// and a newline, mode 0600. It creates dir with mode 0700 if needed and tightens an existing
// dir to 0700. It refuses, with code ECONFLICT, if dir holds any key file already. rnd
// supplies the keys; nil means crypto/rand.Reader.
func CreateKeyring(dir string, rnd io.Reader) (*Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, vitalgate.Internal(err, "seal: create keyring")
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, vitalgate.Internal(err, "seal: create keyring")
	} else if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil { // #nosec G302 -- dir is a directory: owner-only rwx, which needs x to be traversed
			return nil, vitalgate.Internal(err, "seal: create keyring")
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, vitalgate.Internal(err, "seal: create keyring")
	}
	for _, e := range entries {
		if name := e.Name(); name == indexKeyFile || strings.HasPrefix(name, kekPrefix) && strings.HasSuffix(name, keySuffix) {
			return nil, &vitalgate.Error{
				Code:    vitalgate.ECONFLICT,
				Message: "keyring already exists",
				Err:     fmt.Errorf("seal: create keyring: %s already holds %s", dir, name),
			}
		}
	}
	for _, name := range []string{indexKeyFile, kekPrefix + "1" + keySuffix} {
		if err := createKeyFile(dir, name, rnd); err != nil {
			return nil, err
		}
	}
	return LoadKeyring(dir)
}

// LoadKeyring loads the keyring in dir. It refuses key files that are readable or writable
// by group or others, a dir writable by group or others, keys that are not 32 bytes, file
// names that look like but are not kek-<n>.key, and a keyring without index.key or without
// any KEK. Other files, such as temporary files left by a crash, are ignored.
func LoadKeyring(dir string) (*Keyring, error) {
	kr, err := loadKeyring(dir)
	if err != nil {
		return nil, vitalgate.Internal(err, "seal: load keyring")
	}
	return kr, nil
}

func loadKeyring(dir string) (*Keyring, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("key directory %s has mode %#o: it must not be writable by group or others (chmod 700 %s)", dir, fi.Mode().Perm(), dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var gens []int
	hasIndex := false
	for _, e := range entries {
		name := e.Name()
		if name == indexKeyFile {
			hasIndex = true
			continue
		}
		if !strings.HasPrefix(name, kekPrefix) || !strings.HasSuffix(name, keySuffix) {
			continue
		}
		n, ok := parseGeneration(name)
		if !ok {
			return nil, fmt.Errorf("unexpected key file %s: KEK files are named kek-<n>.key, with n ≥ 1", filepath.Join(dir, name))
		}
		gens = append(gens, n)
	}
	if !hasIndex {
		return nil, fmt.Errorf("%s holds no %s", dir, indexKeyFile)
	}
	if len(gens) == 0 {
		return nil, fmt.Errorf("%s holds no KEK (kek-<n>.key)", dir)
	}
	slices.Sort(gens)

	kr := &Keyring{keks: make(map[string]*aeadKey, len(gens))}
	for _, n := range gens {
		id := kekID(n)
		key, err := readKeyFile(filepath.Join(dir, id+keySuffix))
		if err != nil {
			return nil, err
		}
		k, err := newAEADKey(key, wrapLabel, id)
		clear(key)
		if err != nil {
			return nil, err
		}
		kr.ids = append(kr.ids, id)
		kr.keks[id] = k
	}
	key, err := readKeyFile(filepath.Join(dir, indexKeyFile))
	if err != nil {
		return nil, err
	}
	kr.index = &indexKeys{key: key}
	return kr, nil
}

// AddKEK adds the next KEK generation to the keyring in dir and returns the reloaded
// keyring, whose current KEK is the new one. The key file is written atomically: a
// temporary file is written and fsynced, then linked into place (which, unlike a rename,
// fails instead of replacing a key file created concurrently: that returns ECONFLICT), and
// the directory is fsynced. Data keys wrapped under older KEKs still unwrap; move them to
// the new KEK with [Keyring.RewrapDataKey]. rnd supplies the key; nil means
// crypto/rand.Reader.
func AddKEK(dir string, rnd io.Reader) (*Keyring, error) {
	kr, err := LoadKeyring(dir)
	if err != nil {
		return nil, err
	}
	n, _ := parseGeneration(kr.CurrentKEKID() + keySuffix)
	if err := createKeyFile(dir, kekID(n+1)+keySuffix, rnd); err != nil {
		return nil, err
	}
	return LoadKeyring(dir)
}

// CurrentKEKID returns the id of the KEK that wraps new data keys.
func (kr *Keyring) CurrentKEKID() string { return kr.ids[len(kr.ids)-1] }

// KEKIDs returns the ids of all KEKs, oldest generation first.
func (kr *Keyring) KEKIDs() []string { return slices.Clone(kr.ids) }

// String describes the keyring by its current KEK id and KEK count, for example
// "seal.Keyring{current: kek-2, keks: 2}".
func (kr Keyring) String() string {
	if len(kr.ids) == 0 {
		return "seal.Keyring{}"
	}
	return fmt.Sprintf("seal.Keyring{current: %s, keks: %d}", kr.ids[len(kr.ids)-1], len(kr.ids))
}

// GoString is String: a Keyring never prints key material, even with %#v.
func (kr Keyring) GoString() string { return kr.String() }

// Format writes String for every verb (%v, %+v, %#v, %x, %d, ...), so no fmt verb can reach
// key material.
func (kr Keyring) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, kr.String()) }

func kekID(n int) string { return kekPrefix + strconv.Itoa(n) }

// parseGeneration parses "kek-<n>.key", n ≥ 1 in canonical decimal.
func parseGeneration(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, kekPrefix)
	if !ok {
		return 0, false
	}
	if s, ok = strings.CutSuffix(s, keySuffix); !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// readKeyFile reads a base64-encoded 32-byte key from a file that only its owner can access.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- path is kek-<n>.key or index.key in the key directory the operator configured
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %#o: key files must not be accessible by group or others (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	defer clear(data)
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("key file %s is too large to hold a key", path)
	}
	text := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	key, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil {
		// The decoder's error gives only an offset, but keep even that out of messages.
		return nil, fmt.Errorf("key file %s does not hold a base64-encoded key", path)
	}
	if len(key) != KeySize {
		clear(key)
		return nil, fmt.Errorf("key file %s holds a %d-byte key, want %d bytes", path, len(key), KeySize)
	}
	return key, nil
}

// createKeyFile writes a fresh random key to dir/name without ever replacing a file:
// temporary file, fsync, hard link into place, fsync dir.
func createKeyFile(dir, name string, rnd io.Reader) error {
	key := make([]byte, KeySize)
	defer clear(key)
	if err := readRand(rnd, key); err != nil {
		return vitalgate.Internal(err, "seal: generate key")
	}
	data := make([]byte, base64.StdEncoding.EncodedLen(KeySize)+1)
	defer clear(data)
	base64.StdEncoding.Encode(data, key)
	data[len(data)-1] = '\n'

	if err := writeNewFile(dir, name, data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &vitalgate.Error{
				Code:    vitalgate.ECONFLICT,
				Message: "key file already exists",
				Err:     fmt.Errorf("seal: write %s: %w", filepath.Join(dir, name), err),
			}
		}
		return vitalgate.Internal(err, "seal: write "+filepath.Join(dir, name))
	}
	return nil
}

func writeNewFile(dir, name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after the link, only the temporary name goes
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmpName, filepath.Join(dir, name)); err != nil {
		return err
	}
	if err := os.Remove(tmpName); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be fsynced there; NTFS journals metadata
	}
	d, err := os.Open(dir) // #nosec G304 -- dir is the key directory the operator configured, opened read-only to fsync it
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
