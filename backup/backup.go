package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// SnapshotDB is an opened database snapshot (or a restored database): its audit log, its
// checkpoints and its rows per table.
type SnapshotDB interface {
	audit.AuditReader
	// AuditCheckpoints returns every stored checkpoint in ascending size order.
	AuditCheckpoints(ctx context.Context) ([]vitalgate.AuditCheckpoint, error)
	// TableCounts returns the number of rows of every table.
	TableCounts(ctx context.Context) (map[string]int64, error)
}

// Source is the data dir a backup is taken of.
type Source struct {
	Dir   string
	Store string // "sqlite" or "postgres"
	// Files lists the data dir's files to back up (relative paths), the database excepted.
	Files func() ([]string, error)
	// Snapshot writes a consistent copy of the database to a new file (SQLite); nil when the
	// database is backed up by other means (PostgreSQL: pg_dump or a base backup).
	Snapshot func(ctx context.Context, path string) error
	// OpenSnapshot opens a snapshot Snapshot wrote; close releases it.
	OpenSnapshot func(ctx context.Context, path string) (db SnapshotDB, close func() error, err error)
	// Signer is the audit checkpoint key: it signs the manifest and a checkpoint of the
	// snapshot's log.
	Signer *audit.Signer
	Origin string
	Now    func() time.Time
}

// Names of the entries of a backup's tar stream, in order.
const (
	tarVerifier = "audit.pub"         // the signer's verifier key line (checked against --key)
	tarManifest = "MANIFEST"          // the signed manifest
	tarAnchor   = "anchor.checkpoint" // a checkpoint of the snapshot's whole log
	tarPrevious = "previous.checkpoint"
	tarData     = "data/" // + path: a data dir file
	tarDB       = "db/" + DBPath
)

// maxDataFile bounds a data dir file other than the database (keys, certificates, JSON).
const maxDataFile = 64 << 20

// Create writes a backup of src to w, encrypted to pub, and returns its manifest. The
// database snapshot is a temporary file in the data dir, streamed in chunks and removed
// before Create returns; the other files are small and read whole.
func Create(ctx context.Context, src Source, w io.Writer, pub hpke.PublicKey) (Manifest, error) {
	now := time.Now
	if src.Now != nil {
		now = src.Now
	}
	rnd := make([]byte, 6)
	if _, err := rand.Read(rnd); err != nil {
		return Manifest{}, err
	}
	created := now().UTC()
	m := Manifest{ID: "bk-" + created.Format("20060102T150405Z") + "-" + hex.EncodeToString(rnd), Created: created,
		Origin: src.Origin, Store: src.Store, LastCheckpoint: -1, Tables: map[string]int64{}}
	// Every backup holds the tombstone key, so that a restore can check the tombstones of
	// erasures that come after it.
	if _, err := LoadTombstoneKey(src.Dir, src.Origin, true); err != nil {
		return m, err
	}
	var anchor, previous []byte
	var dbPath string
	var files []string
	var contents [][]byte
	// The snapshot's data keys are wrapped under key-encryption keys that exist when it is
	// taken; an erasure or rotation during the snapshot could delete one. So the key files
	// must be the same before and after the snapshot, or it is taken again.
	for attempt := 1; ; attempt++ {
		before, err := keyFiles(src)
		if err != nil {
			return m, err
		}
		if src.Snapshot != nil {
			dbPath = filepath.Join(src.Dir, ".backup-"+m.ID+".db")
			removeSnapshot(dbPath)
			if err := src.Snapshot(ctx, dbPath); err != nil {
				removeSnapshot(dbPath)
				return m, fmt.Errorf("snapshot the database: %w", err)
			}
		}
		if files, contents, err = readFiles(src); err != nil {
			removeSnapshot(dbPath)
			if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
				continue // a file went away while it was read (a key destroyed): again
			}
			return m, err
		}
		after := map[string]string{}
		for i, p := range files {
			if isKeyFile(p) {
				after[p] = string(contents[i])
			}
		}
		if maps.Equal(before, after) {
			break
		}
		removeSnapshot(dbPath)
		if attempt == 3 {
			return m, errors.New("the data dir's keys changed during each of three attempts (key rotations or erasures): run the backup again when they are done")
		}
	}
	if dbPath != "" {
		defer removeSnapshot(dbPath)
		var err error
		if anchor, previous, err = describeSnapshot(ctx, src, dbPath, &m); err != nil {
			return m, err
		}
	}
	for i, p := range files {
		data := contents[i]
		sum := sha256.Sum256(data)
		m.Files = append(m.Files, File{Path: filepath.ToSlash(p), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		if p == TombstonesFile {
			m.Tombstones = bytes.Count(data, []byte("\n"))
		}
	}
	var err error
	var dbInfo File
	if dbPath != "" {
		if dbInfo, err = hashFile(dbPath); err != nil {
			return m, err
		}
		dbInfo.Path = DBPath
		m.Files = append(m.Files, dbInfo)
	}
	note, err := SignManifest(m, src.Signer)
	if err != nil {
		return m, err
	}

	sw, err := newSealer(w, pub)
	if err != nil {
		return m, err
	}
	tw := tar.NewWriter(sw)
	put := func(name string, data []byte, mode int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put(tarVerifier, []byte(src.Signer.Verifier().String()+"\n"), 0o644); err != nil {
		return m, fmt.Errorf("write backup: %w", err)
	}
	if err := put(tarManifest, note, 0o644); err != nil {
		return m, fmt.Errorf("write backup: %w", err)
	}
	if anchor != nil {
		if err := put(tarAnchor, anchor, 0o644); err != nil {
			return m, fmt.Errorf("write backup: %w", err)
		}
	}
	if previous != nil {
		if err := put(tarPrevious, previous, 0o644); err != nil {
			return m, fmt.Errorf("write backup: %w", err)
		}
	}
	for i, p := range files {
		mode := int64(0o600)
		if st, err := os.Stat(filepath.Join(src.Dir, p)); err == nil {
			mode = int64(st.Mode().Perm() & 0o644)
		}
		if err := put(tarData+filepath.ToSlash(p), contents[i], mode); err != nil {
			return m, fmt.Errorf("write backup: %w", err)
		}
	}
	if dbPath != "" {
		if err := streamFile(ctx, tw, dbPath, dbInfo, created); err != nil {
			return m, err
		}
	}
	if err := tw.Close(); err != nil {
		return m, fmt.Errorf("write backup: %w", err)
	}
	if err := sw.Close(); err != nil {
		return m, err
	}
	return m, nil
}

// describeSnapshot fills in the manifest's audit and table fields from the snapshot and
// returns a checkpoint of its whole log (signed now) and its last stored checkpoint.
func describeSnapshot(ctx context.Context, src Source, path string, m *Manifest) (anchor, previous []byte, err error) {
	db, closeDB, err := src.OpenSnapshot(ctx, path)
	if err != nil {
		return nil, nil, fmt.Errorf("open the snapshot: %w", err)
	}
	defer func() {
		if cerr := closeDB(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if m.Tables, err = db.TableCounts(ctx); err != nil {
		return nil, nil, err
	}
	size, err := db.AuditSize(ctx)
	if err != nil {
		return nil, nil, err
	}
	var t audit.Tree
	if err := db.AuditEntries(ctx, 0, size, func(r vitalgate.AuditRecord) error {
		if r.Index != t.Size() {
			return fmt.Errorf("the snapshot's audit log has a gap at entry %d", t.Size())
		}
		h, err := audit.RecordLeaf(r)
		if err != nil {
			return err
		}
		t.Append(h)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	m.AuditSize, m.AuditRoot = t.Size(), t.Root()
	cps, err := db.AuditCheckpoints(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(cps) > 0 {
		last := cps[len(cps)-1]
		m.LastCheckpoint = int64(last.Size) // #nosec G115 -- a tree size
		previous = last.Note
	}
	anchor, err = audit.SignCheckpoint(audit.Checkpoint{Origin: src.Origin, Size: m.AuditSize, Root: m.AuditRoot}, src.Signer)
	return anchor, previous, err
}

func removeSnapshot(path string) {
	if path == "" {
		return
	}
	for _, s := range []string{"", "-wal", "-shm", "-journal"} {
		_ = os.Remove(path + s)
	}
}

// isKeyFile reports whether a data dir path is in the keyring directory.
func isKeyFile(p string) bool { return strings.HasPrefix(filepath.ToSlash(p), "keys/") }

// keyFiles reads the keyring files of the data dir.
func keyFiles(src Source) (map[string]string, error) {
	files, contents, err := readFiles(src)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, p := range files {
		if isKeyFile(p) {
			out[p] = string(contents[i])
		}
	}
	return out, nil
}

// readFiles reads the data dir's files to back up.
func readFiles(src Source) ([]string, [][]byte, error) {
	files, err := src.Files()
	if err != nil {
		return nil, nil, err
	}
	contents := make([][]byte, len(files))
	for i, p := range files {
		if contents[i], err = readSmall(filepath.Join(src.Dir, p)); err != nil {
			return nil, nil, err
		}
	}
	return files, contents, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- a data dir file
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDataFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDataFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a data dir file a backup holds", path, maxDataFile)
	}
	return data, nil
}

func hashFile(path string) (File, error) {
	f, err := os.Open(path) // #nosec G304 -- the snapshot in the data dir
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, err
	}
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// streamFile writes the snapshot into the tar stream, checking it is still what was hashed.
func streamFile(ctx context.Context, tw *tar.Writer, path string, info File, at time.Time) error {
	f, err := os.Open(path) // #nosec G304 -- the snapshot in the data dir
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: tarDB, Mode: 0o600, Size: info.Size, ModTime: at, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tw, h), &ctxReader{ctx, f}); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	if hex.EncodeToString(h.Sum(nil)) != info.SHA256 {
		return errors.New("the database snapshot changed while it was written: run the backup again")
	}
	return nil
}

// ctxReader stops a long copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Status is the data dir's backup-status.json: the last backup taken of it and the last
// backup verified for it (by a restore or `vitalgate restore --verify-only --record`).
type Status struct {
	LastBackup   *BackupRecord `json:"last_backup,omitempty"`
	LastVerified *VerifyRecord `json:"last_verified,omitempty"`
}

// BackupRecord describes a backup taken.
type BackupRecord struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	Store     string    `json:"store"`
	Entries   uint64    `json:"audit_entries"`
	Bytes     int64     `json:"bytes"`
	Seconds   float64   `json:"seconds"`
	Encrypted string    `json:"encrypted"`
}

// VerifyRecord describes a backup verified (restored and checked).
type VerifyRecord struct {
	ID         string    `json:"id"`
	BackupAt   time.Time `json:"backup_at"`
	At         time.Time `json:"at"`
	OK         bool      `json:"ok"`
	Entries    uint64    `json:"audit_entries"`
	Tables     int       `json:"tables"`
	Seconds    float64   `json:"seconds"`
	Problem    string    `json:"problem,omitempty"`
	Tombstones int       `json:"tombstones_replayed,omitempty"`
}

// ReadStatus reads DIR/backup-status.json (the zero Status when there is none).
func ReadStatus(dir string) (Status, error) {
	var s Status
	data, err := os.ReadFile(filepath.Join(dir, StatusFile)) // #nosec G304 -- data dir path
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	} else if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", StatusFile, err)
	}
	return s, nil
}

// RecordStatus updates DIR/backup-status.json with b and/or v (nil keeps the previous).
func RecordStatus(dir string, b *BackupRecord, v *VerifyRecord) error {
	s, err := ReadStatus(dir)
	if err != nil {
		return err
	}
	if b != nil {
		s.LastBackup = b
	}
	if v != nil {
		s.LastVerified = v
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return replaceFile(filepath.Join(dir, StatusFile), append(data, '\n'), 0o600)
}
