package vault

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
	"github.com/vitalgate/vitalgate/seal"
)

// The key files of a data directory's keys/ folder: one per KEK generation and the
// blind-index key. Reading and writing them is the vault's; package seal only computes.
const (
	indexKeyFile = "index.key"
	kekPrefix    = "kek-"
	keySuffix    = ".key"
	maxKeyFile   = 1024 // a key file is 45 bytes; anything much larger is not one
)

// CreateKeyring creates a new keyring in dir (the data directory's keys/ folder): a first
// KEK, kek-1.key, and the blind-index key, index.key, each holding the base64-encoded key
// and a newline, mode 0600. It creates dir with mode 0700 if needed and tightens an existing
// dir to 0700. It refuses, with code ECONFLICT, if dir holds any key file already. rnd
// supplies the keys; nil means crypto/rand.Reader.
func CreateKeyring(dir string, rnd io.Reader) (*seal.Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, vitalgate.Internal(err, "vault: create keyring")
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, vitalgate.Internal(err, "vault: create keyring")
	} else if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil { // #nosec G302 -- dir is a directory: owner-only rwx, which needs x to be traversed
			return nil, vitalgate.Internal(err, "vault: create keyring")
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, vitalgate.Internal(err, "vault: create keyring")
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
func LoadKeyring(dir string) (*seal.Keyring, error) {
	kr, err := loadKeyring(dir)
	if err != nil {
		return nil, vitalgate.Internal(err, "vault: load keyring")
	}
	return kr, nil
}

func loadKeyring(dir string) (*seal.Keyring, error) {
	return loadKeys(dir, filepath.Join(dir, indexKeyFile))
}

// loadKeys loads the KEK generations of dir and the blind-index key at indexPath (in dir for
// the deployment's keyring, in the key directory above it for a site's).
func loadKeys(dir, indexPath string) (*seal.Keyring, error) {
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
	if !hasIndex && filepath.Dir(indexPath) == filepath.Clean(dir) {
		return nil, fmt.Errorf("%s holds no %s", dir, indexKeyFile)
	}
	if len(gens) == 0 {
		return nil, fmt.Errorf("%s holds no KEK (kek-<n>.key)", dir)
	}
	slices.Sort(gens)

	keks := make([]seal.KEK, 0, len(gens))
	defer func() {
		for _, k := range keks {
			clear(k.Key)
		}
	}()
	for _, n := range gens {
		key, err := readKeyFile(filepath.Join(dir, kekID(n)+keySuffix))
		if err != nil {
			return nil, err
		}
		keks = append(keks, seal.KEK{Generation: n, Key: key})
	}
	index, err := readKeyFile(indexPath)
	if err != nil {
		return nil, err
	}
	defer clear(index)
	return seal.NewKeyring(keks, index)
}

// AddKEK adds the next KEK generation to the keyring in dir and returns the reloaded
// keyring, whose current KEK is the new one. The key file is written atomically: a
// temporary file is written and fsynced, then linked into place (which, unlike a rename,
// fails instead of replacing a key file created concurrently: that returns ECONFLICT), and
// the directory is fsynced. Data keys wrapped under older KEKs still unwrap; move them to
// the new KEK with [seal.Keyring.RewrapDataKey] (see [Vault.Rotate]). rnd supplies the key; nil means
// crypto/rand.Reader.
func AddKEK(dir string, rnd io.Reader) (*seal.Keyring, error) {
	kr, err := LoadKeyring(dir)
	if err != nil {
		return nil, err
	}
	if err := createKeyFile(dir, kekID(kr.CurrentGeneration()+1)+keySuffix, rnd); err != nil {
		return nil, err
	}
	return LoadKeyring(dir)
}

func kekID(n int) string { return seal.KEKID(n) }

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
	if len(key) != seal.KeySize {
		clear(key)
		return nil, fmt.Errorf("key file %s holds a %d-byte key, want %d bytes", path, len(key), seal.KeySize)
	}
	return key, nil
}

// createKeyFile writes a fresh random key to dir/name without ever replacing a file:
// temporary file, fsync, hard link into place, fsync dir.
func createKeyFile(dir, name string, rnd io.Reader) error {
	key, err := seal.NewKey(rnd)
	if err != nil {
		return err
	}
	defer clear(key)
	data := make([]byte, base64.StdEncoding.EncodedLen(seal.KeySize)+1)
	defer clear(data)
	base64.StdEncoding.Encode(data, key)
	data[len(data)-1] = '\n'

	if err := writeNewFile(dir, name, data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &vitalgate.Error{
				Code:    vitalgate.ECONFLICT,
				Message: "key file already exists",
				Err:     fmt.Errorf("vault: write %s: %w", filepath.Join(dir, name), err),
			}
		}
		return vitalgate.Internal(err, "vault: write "+filepath.Join(dir, name))
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

// kekFileIDs returns the KEK ids of the key files in dir, oldest generation first, without
// reading them (a cheap look for a changed keyring).
func kekFileIDs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, vitalgate.Internal(err, "vault: look at key directory")
	}
	var gens []int
	for _, e := range entries {
		if n, ok := parseGeneration(e.Name()); ok {
			gens = append(gens, n)
		}
	}
	slices.Sort(gens)
	ids := make([]string, len(gens))
	for i, n := range gens {
		ids[i] = kekID(n)
	}
	return ids, nil
}
