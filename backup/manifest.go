package backup

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/audit"
)

// manifestHeader is the first line of a manifest's text: never a checkpoint origin followed by
// a tree size, so that a signed manifest cannot be taken for a checkpoint.
const manifestHeader = "vitalgate-backup v1"

// File is one file of a backup, named by its path relative to the data dir.
type File struct {
	Path   string
	Size   int64
	SHA256 string // hex
}

// Manifest describes a backup. The audit key signs it (a signed note, like a checkpoint), so a
// restore can refuse a file that is not what the deployment wrote.
type Manifest struct {
	ID      string
	Created time.Time
	Origin  string // the audit log's origin
	Store   string // "sqlite" or "postgres" (whose database is backed up with pg_dump)
	// AuditSize and AuditRoot describe the snapshot's audit log (SQLite); zero for postgres.
	AuditSize uint64
	AuditRoot [audit.HashSize]byte
	// LastCheckpoint is the size of the snapshot's last stored checkpoint, -1 if none.
	LastCheckpoint int64
	// Tombstones is the number of erasure tombstones the data dir held.
	Tombstones int
	Tables     map[string]int64 // rows per table of the snapshot
	Files      []File           // every file of the backup but the database, then the database
}

// DBPath is the path of the database snapshot in a backup (SQLite).
const DBPath = "vitalgate.db"

// Marshal returns the manifest's text (what the audit key signs).
func (m Manifest) Marshal() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nid %s\ncreated %s\norigin %s\nstore %s\n", manifestHeader, m.ID, m.Created.UTC().Format(time.RFC3339Nano), m.Origin, m.Store)
	fmt.Fprintf(&b, "audit %d %s\ncheckpoint %d\ntombstones %d\n", m.AuditSize, base64.StdEncoding.EncodeToString(m.AuditRoot[:]), m.LastCheckpoint, m.Tombstones)
	names := make([]string, 0, len(m.Tables))
	for n := range m.Tables {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "table %s %d\n", n, m.Tables[n])
	}
	for _, f := range m.Files {
		fmt.Fprintf(&b, "file %s %d %s\n", f.SHA256, f.Size, strconv.Quote(f.Path))
	}
	return []byte(b.String())
}

// File returns the manifest's entry for path.
func (m Manifest) File(path string) (File, bool) {
	for _, f := range m.Files {
		if f.Path == path {
			return f, true
		}
	}
	return File{}, false
}

// ParseManifest parses a manifest's text.
func ParseManifest(text []byte) (Manifest, error) {
	m := Manifest{Tables: map[string]int64{}}
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if len(lines) == 0 || lines[0] != manifestHeader {
		return m, fmt.Errorf("backup manifest: first line is not %q", manifestHeader)
	}
	bad := func(l string, err error) error { return fmt.Errorf("backup manifest: bad line %q: %v", l, err) }
	for _, l := range lines[1:] {
		key, rest, _ := strings.Cut(l, " ")
		var err error
		switch key {
		case "id":
			m.ID = rest
		case "created":
			m.Created, err = time.Parse(time.RFC3339Nano, rest)
		case "origin":
			m.Origin = rest
		case "store":
			m.Store = rest
		case "audit":
			size, root, _ := strings.Cut(rest, " ")
			if m.AuditSize, err = strconv.ParseUint(size, 10, 64); err == nil {
				var r []byte
				r, err = base64.StdEncoding.Strict().DecodeString(root)
				if err == nil && len(r) != audit.HashSize {
					err = fmt.Errorf("root is %d bytes", len(r))
				}
				copy(m.AuditRoot[:], r)
			}
		case "checkpoint":
			m.LastCheckpoint, err = strconv.ParseInt(rest, 10, 64)
		case "tombstones":
			m.Tombstones, err = strconv.Atoi(rest)
		case "table":
			name, n, _ := strings.Cut(rest, " ")
			m.Tables[name], err = strconv.ParseInt(n, 10, 64)
		case "file":
			f := File{}
			parts := strings.SplitN(rest, " ", 3)
			if len(parts) != 3 {
				err = fmt.Errorf("want digest, size and path")
				break
			}
			f.SHA256 = parts[0]
			if f.Size, err = strconv.ParseInt(parts[1], 10, 64); err == nil {
				f.Path, err = strconv.Unquote(parts[2])
			}
			m.Files = append(m.Files, f)
		default:
			err = fmt.Errorf("unknown line")
		}
		if err != nil {
			return m, bad(l, err)
		}
	}
	if m.ID == "" || m.Origin == "" || m.Store == "" || m.Created.IsZero() {
		return m, fmt.Errorf("backup manifest: id, created, origin or store missing")
	}
	return m, nil
}

// SignManifest returns the manifest as a note signed by s (the audit key).
func SignManifest(m Manifest, s *audit.Signer) ([]byte, error) { return audit.SignNote(m.Marshal(), s) }

// OpenManifest checks a signed manifest with v and parses it.
func OpenManifest(note []byte, v audit.Verifier) (Manifest, error) {
	text, err := audit.OpenNote(note, v)
	if err != nil {
		return Manifest{}, fmt.Errorf("the backup's manifest does not verify with %s: %w", v.Name(), err)
	}
	return ParseManifest(text)
}
