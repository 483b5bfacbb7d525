package updates

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/vitalgate/vitalgate"
)

// The files of a key dir (`vitalgate update keys init --out KEYDIR`): root-N.key and
// targets-N.key (one Ed25519 private key each, PKCS#8 PEM, mode 0600) and keys.json (the
// public keys of both roles and the threshold).
const (
	KeysFile       = "keys.json"
	rootPrefix     = "root-"
	targetsPrefix  = "targets-"
	keyFileSuffix  = ".key"
	maxKeyFileSize = 4096
)

// MaxThreshold is the most signatures a role may require.
const MaxThreshold = 16

// keysJSON is the public part of a key dir.
type keysJSON struct {
	Threshold int      `json:"threshold"`
	Root      []string `json:"root"`    // hex Ed25519 public keys
	Targets   []string `json:"targets"` // hex Ed25519 public keys
}

// key is one private key of a key dir or a data dir.
type key struct {
	file   string
	id     string
	public *metadata.Key
	signer signature.Signer
}

// KeySet is an opened key dir: the private keys it holds (all of a ceremony's, or one key
// holder's) and, when keys.json is there, the public keys and threshold of both offline roles.
type KeySet struct {
	Dir       string
	Threshold int             // from keys.json; 0 without it
	Root      []*metadata.Key // public root keys from keys.json
	Targets   []*metadata.Key // public targets keys from keys.json
	root      []key
	targets   []key
}

func newKey(file string, priv ed25519.PrivateKey) (key, error) {
	s, err := signature.LoadED25519Signer(priv)
	if err != nil {
		return key{}, err
	}
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return key{}, err
	}
	id, err := pub.ID()
	if err != nil {
		return key{}, err
	}
	return key{file: file, id: id, public: pub, signer: s}, nil
}

// GenerateKeyPEM returns a new Ed25519 private key as PKCS#8 PEM. rnd nil means crypto/rand.
func GenerateKeyPEM(rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("generate update key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode update key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseKeyPEM(file string, data []byte) (key, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return key{}, fmt.Errorf("%s is not a PEM private key", file)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return key{}, fmt.Errorf("%s: %w", file, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return key{}, fmt.Errorf("%s is not an Ed25519 key", file)
	}
	return newKey(file, priv)
}

func publicHex(k *metadata.Key) string { return k.Value.PublicKey }

func keyFromHex(h string) (*metadata.Key, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q is not a hex Ed25519 public key", h)
	}
	return metadata.KeyFromPublicKey(ed25519.PublicKey(b))
}

// InitKeys creates the key dir dir (mode 0700): threshold root keys and threshold targets
// keys, so that each of threshold key holders can be given one of each, and keys.json. It
// refuses a dir that holds a key dir already and a threshold outside 1..MaxThreshold.
func InitKeys(dir string, threshold int, rnd io.Reader) (*KeySet, error) {
	if threshold < 1 || threshold > MaxThreshold {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "--threshold must be 1 to %d", MaxThreshold)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeysFile)); err == nil {
		return nil, vitalgate.Errorf(vitalgate.ECONFLICT, "%s holds update keys already: choose a new directory", dir)
	}
	pub := keysJSON{Threshold: threshold}
	for _, role := range []string{rootPrefix, targetsPrefix} {
		for i := 1; i <= threshold; i++ {
			name := fmt.Sprintf("%s%d%s", role, i, keyFileSuffix)
			data, err := GenerateKeyPEM(rnd)
			if err != nil {
				return nil, err
			}
			k, err := parseKeyPEM(name, data)
			if err != nil {
				return nil, err
			}
			if err := writeNew(filepath.Join(dir, name), data, 0o600); err != nil {
				return nil, err
			}
			if role == rootPrefix {
				pub.Root = append(pub.Root, publicHex(k.public))
			} else {
				pub.Targets = append(pub.Targets, publicHex(k.public))
			}
		}
	}
	data, err := json.MarshalIndent(pub, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeNew(filepath.Join(dir, KeysFile), append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	return LoadKeys(dir)
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode) // #nosec G304 -- the key dir the operator named
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// readSecret reads a private key file, refusing one that other users could read.
func readSecret(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "%s is readable by other users (mode %o): run `chmod 600 %s`", path, st.Mode().Perm(), path)
	}
	if st.Size() > maxKeyFileSize {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "%s is too large to be a key file", path)
	}
	return os.ReadFile(path) // #nosec G304 -- a key file in the key dir the operator named
}

// LoadKeys opens the key dir dir: every root-N.key and targets-N.key in it and keys.json
// when present. A dir with no key file is refused.
func LoadKeys(dir string) (*KeySet, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "key dir %s does not exist: create one with `vitalgate update keys init --out %s`", dir, dir)
	} else if err != nil {
		return nil, fmt.Errorf("read key dir: %w", err)
	}
	ks := &KeySet{Dir: dir}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, keyFileSuffix) || (!strings.HasPrefix(name, rootPrefix) && !strings.HasPrefix(name, targetsPrefix)) {
			continue
		}
		data, err := readSecret(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		k, err := parseKeyPEM(name, data)
		if err != nil {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "%s in %s is not an update key: %v", name, dir, err)
		}
		if strings.HasPrefix(name, rootPrefix) {
			ks.root = append(ks.root, k)
		} else {
			ks.targets = append(ks.targets, k)
		}
	}
	if len(ks.root)+len(ks.targets) == 0 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "key dir %s holds no root-N.key or targets-N.key: name the dir `vitalgate update keys init` created (or the key holder's copy)", dir)
	}
	data, err := os.ReadFile(filepath.Join(dir, KeysFile)) // #nosec G304 -- the key dir the operator named
	if errors.Is(err, fs.ErrNotExist) {
		return ks, nil
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", KeysFile, err)
	}
	var pub keysJSON
	if err := json.Unmarshal(data, &pub); err != nil || pub.Threshold < 1 || pub.Threshold > len(pub.Root) || pub.Threshold > len(pub.Targets) {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "%s in %s is not a valid key list (threshold and public keys)", KeysFile, dir)
	}
	ks.Threshold = pub.Threshold
	for _, h := range pub.Root {
		k, err := keyFromHex(h)
		if err != nil {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "%s: %v", KeysFile, err)
		}
		ks.Root = append(ks.Root, k)
	}
	for _, h := range pub.Targets {
		k, err := keyFromHex(h)
		if err != nil {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "%s: %v", KeysFile, err)
		}
		ks.Targets = append(ks.Targets, k)
	}
	return ks, nil
}

// OnlineKeys are the snapshot and timestamp keys: kept in the data dir of every node, so
// that the server re-signs those short-lived roles before they expire.
type OnlineKeys struct {
	snapshot, timestamp key
}

// ParseOnlineKeys reads the snapshot and timestamp keys from their PEM files' contents.
func ParseOnlineKeys(snapshotPEM, timestampPEM []byte) (*OnlineKeys, error) {
	s, err := parseKeyPEM("snapshot key", snapshotPEM)
	if err != nil {
		return nil, err
	}
	t, err := parseKeyPEM("timestamp key", timestampPEM)
	if err != nil {
		return nil, err
	}
	return &OnlineKeys{snapshot: s, timestamp: t}, nil
}

// IDs returns the TUF key ids of the snapshot and timestamp keys.
func (o *OnlineKeys) IDs() (snapshot, timestamp string) { return o.snapshot.id, o.timestamp.id }
