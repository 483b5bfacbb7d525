package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/audit"
)

// Files of the data dir that this package owns.
const (
	// TombstoneKeyFile is the Ed25519 key that signs erasure tombstones (secret, mode 0600).
	// It is created by the first backup or erasure, so every backup holds it.
	TombstoneKeyFile = "tombstone.key"
	// TombstonesFile is the data dir's own copy of the tombstone list (one JSON line each).
	TombstonesFile = "tombstones.log"
	// ConfigFile says where the tombstone list is exported (outside the data dir).
	ConfigFile = "backup.json"
	// StatusFile records the last backup and the last verified backup, for the evidence report.
	StatusFile = "backup-status.json"
	// EpochsFile holds the audit log's epoch records (audit.Epoch), one per restore.
	EpochsFile = "audit-epochs.json"
)

const tombstoneHeader = "vitalgate-tombstone v1"

// Tombstone records one erasure by the ids of the data keys it destroyed (DataKeyID), never a
// patient identifier or blind index.
type Tombstone struct {
	ID       string    // the erasure request's id (random)
	At       time.Time // when the erasure was approved
	DataKeys []string  // hex data-key ids
}

func (t Tombstone) marshal() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nid %s\nat %s\n", tombstoneHeader, t.ID, t.At.UTC().Format(time.RFC3339Nano))
	for _, k := range t.DataKeys {
		fmt.Fprintf(&b, "key %s\n", k)
	}
	return []byte(b.String())
}

func parseTombstone(text []byte) (Tombstone, error) {
	var t Tombstone
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if lines[0] != tombstoneHeader {
		return t, errors.New("not a tombstone")
	}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "id":
			t.ID = v
		case "at":
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return t, err
			}
			t.At = at
		case "key":
			if b, err := hex.DecodeString(v); err != nil || len(b) != sha256.Size {
				return t, fmt.Errorf("bad data-key id %q", v)
			}
			t.DataKeys = append(t.DataKeys, v)
		default:
			return t, fmt.Errorf("unknown line %q", l)
		}
	}
	if t.ID == "" || t.At.IsZero() {
		return t, errors.New("tombstone without id or time")
	}
	return t, nil
}

// TombstoneKey signs tombstones and derives data-key ids.
type TombstoneKey struct {
	signer *audit.Signer
	idKey  []byte
}

// tombstoneKeyName is the signed-note key name of a deployment's tombstone key.
func tombstoneKeyName(origin string) string { return origin + "/tombstones" }

// LoadTombstoneKey loads DIR/tombstone.key, creating it when create is set and it is missing.
func LoadTombstoneKey(dir, origin string, create bool) (*TombstoneKey, error) {
	path := filepath.Join(dir, TombstoneKeyFile)
	data, err := os.ReadFile(path) // #nosec G304 -- data dir path
	if errors.Is(err, fs.ErrNotExist) && create {
		key, gerr := audit.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		pemKey, merr := audit.MarshalPrivateKey(key)
		if merr != nil {
			return nil, merr
		}
		if werr := writeNew(path, pemKey, 0o600); werr != nil && !errors.Is(werr, fs.ErrExist) {
			return nil, fmt.Errorf("write %s: %w", TombstoneKeyFile, werr)
		}
		data, err = os.ReadFile(path) // #nosec G304 -- data dir path
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", TombstoneKeyFile, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by other users: run `chmod 600 %s`", path, path)
	}
	return parseTombstoneKey(data, origin)
}

func parseTombstoneKey(data []byte, origin string) (*TombstoneKey, error) {
	key, err := audit.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", TombstoneKeyFile, err)
	}
	s, err := audit.NewSigner(tombstoneKeyName(origin), key)
	if err != nil {
		return nil, err
	}
	idKey, err := hkdf.Key(sha256.New, key.Seed(), nil, "vitalgate tombstone data-key id v1", 32)
	if err != nil {
		return nil, fmt.Errorf("backup: derive the data-key id key: %w", err)
	}
	return &TombstoneKey{signer: s, idKey: idKey}, nil
}

// Verifier returns the verifier of the key's tombstones.
func (k *TombstoneKey) Verifier() audit.Verifier { return k.signer.Verifier() }

// DataKeyID returns the id of the data key of a patient of site: HMAC-SHA-256 under a key
// derived from the tombstone key over the site and the patient's blind index. It names one
// data key and, without the key, reveals nothing about the patient, nor links to the audit
// log's blind indexes.
func (k *TombstoneKey) DataKeyID(site string, patientIndex []byte) string {
	m := hmac.New(sha256.New, k.idKey)
	m.Write([]byte(site))
	m.Write([]byte{0})
	m.Write(patientIndex)
	return hex.EncodeToString(m.Sum(nil))
}

// tombstoneLine is one line of a tombstone list.
type tombstoneLine struct {
	Tombstone string `json:"tombstone"` // the signed note
}

// Line returns t signed, as one line of a tombstone list (with its newline).
func (k *TombstoneKey) Line(t Tombstone) ([]byte, error) {
	note, err := audit.SignNote(t.marshal(), k.signer)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(tombstoneLine{string(note)})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ReadTombstones reads a tombstone list and checks every tombstone's signature by v. It
// refuses the whole list if any line is not a tombstone validly signed by v: a list that was
// tampered with is not a basis for destroying (or keeping) data.
func ReadTombstones(r io.Reader, v audit.Verifier) ([]Tombstone, error) {
	var out []Tombstone
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l tombstoneLine
		if err := json.Unmarshal(line, &l); err != nil || l.Tombstone == "" {
			return nil, fmt.Errorf("tombstone list line %d is not a tombstone", n)
		}
		text, err := audit.OpenNote([]byte(l.Tombstone), v)
		if err != nil {
			return nil, fmt.Errorf("tombstone list line %d is not signed by this deployment's tombstone key (%s): %w", n, v.Name(), err)
		}
		t, err := parseTombstone(text)
		if err != nil {
			return nil, fmt.Errorf("tombstone list line %d: %w", n, err)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read tombstone list: %w", err)
	}
	return out, nil
}

// Config is the data dir's backup.json.
type Config struct {
	// TombstonesExport is the file, outside the data dir, to which every tombstone is also
	// appended: the list a restore replays (`vitalgate restore --tombstones FILE`).
	TombstonesExport string `json:"tombstones_export,omitempty"`
}

// ReadConfig reads DIR/backup.json (the zero Config when there is none).
func ReadConfig(dir string) (Config, error) {
	var c Config
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile)) // #nosec G304 -- data dir path
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	} else if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	return c, nil
}

// SetTombstonesExport records where tombstones are exported, which must be an absolute path
// outside the data dir, and writes the data dir's tombstone list there (the file must be new
// or hold a prefix of it).
func SetTombstonesExport(dir, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("the tombstone export file must be an absolute path, not %q", path)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(absDir, path); err == nil && filepath.IsLocal(rel) {
		return fmt.Errorf("the tombstone export file %s is inside the data dir: put it where backups and restores of the data dir do not write (another disk, a mounted share)", path)
	}
	c, err := ReadConfig(dir)
	if err != nil {
		return err
	}
	c.TombstonesExport = path
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := replaceFile(filepath.Join(dir, ConfigFile), append(data, '\n'), 0o600); err != nil {
		return err
	}
	return syncExport(dir, path)
}

// syncExport appends to the export file the lines of the data dir's list that it lacks.
func syncExport(dir, export string) error {
	own, err := os.ReadFile(filepath.Join(dir, TombstonesFile)) // #nosec G304 -- data dir path
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	have, err := os.ReadFile(export) // #nosec G304 -- the operator's configured path
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read the tombstone export %s: %w", export, err)
	}
	seen := map[string]bool{}
	for l := range bytes.SplitSeq(have, []byte("\n")) {
		seen[string(bytes.TrimSpace(l))] = true
	}
	var add []byte
	for l := range bytes.SplitSeq(own, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && !seen[string(l)] {
			add = append(append(add, l...), '\n')
		}
	}
	if len(add) == 0 && have != nil {
		return nil
	}
	return appendSync(export, add)
}

// Tombstones records erasures as tombstones: in the data dir's list and in the configured
// export. It is the hook package erasure calls after an erasure.
type Tombstones struct {
	Dir    string
	Origin string
}

// Erased records the erasure requestID of the data key of patientIndex of site, approved at.
// The tombstone goes to the data dir's list, then to the export file (if configured); an
// error after the first says how to export it again.
func (t Tombstones) Erased(_ context.Context, requestID, site string, at time.Time, patientIndexes ...[]byte) error {
	k, err := LoadTombstoneKey(t.Dir, t.Origin, true)
	if err != nil {
		return fmt.Errorf("could not be recorded: %w", err)
	}
	ids := make([]string, len(patientIndexes))
	for i, idx := range patientIndexes {
		ids[i] = k.DataKeyID(site, idx)
	}
	line, err := k.Line(Tombstone{ID: requestID, At: at.UTC(), DataKeys: ids})
	if err != nil {
		return fmt.Errorf("could not be recorded: %w", err)
	}
	if err := appendSync(filepath.Join(t.Dir, TombstonesFile), line); err != nil {
		return fmt.Errorf("could not be recorded in %s: %w", TombstonesFile, err)
	}
	c, err := ReadConfig(t.Dir)
	if err != nil {
		return fmt.Errorf("is recorded in the data dir, but %w", err)
	}
	if c.TombstonesExport == "" {
		return nil
	}
	if err := syncExport(t.Dir, c.TombstonesExport); err != nil {
		return fmt.Errorf("is recorded in the data dir but could not be exported to %s (%w): fix that and run `vitalgate backup tombstones --data %s --export %s`",
			c.TombstonesExport, err, t.Dir, c.TombstonesExport)
	}
	return nil
}

// appendSync appends data to path (created 0600) and syncs it.
func appendSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) // #nosec G304 -- data dir or the operator's configured path
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// writeNew writes a new file, refusing to overwrite, and syncs it.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode) // #nosec G304 -- data dir path
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// replaceFile writes path atomically (a temporary file renamed over it).
func replaceFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := writeNew(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
