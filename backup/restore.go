package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/vault"
)

// Unpacked is a backup extracted into a directory, its manifest verified.
type Unpacked struct {
	Manifest Manifest
	Note     []byte // the signed manifest
	Anchor   []byte // the checkpoint of the snapshot's whole log (SQLite)
	Previous []byte // the snapshot's last stored checkpoint, if any
	Verifier audit.Verifier
	// OwnKey means the manifest was checked with the verifier key inside the backup, not one
	// the operator kept (--key): it proves the backup is whole, not whose it is.
	OwnKey bool
}

// Unpack decrypts the backup read from r with priv, checks its signed manifest with key (or,
// if nil, with the verifier key the backup holds) and extracts it into dir, which must not
// exist: every file must be listed in the manifest with its size and SHA-256, and every file
// listed must be there. On any error dir is removed.
func Unpack(ctx context.Context, r io.Reader, priv hpke.PrivateKey, key *audit.Verifier, dir string) (u *Unpacked, err error) {
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("%s exists: restore into a new directory (the restore never overwrites a data dir)", dir)
	}
	op, err := newOpener(r, priv)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	tr := tar.NewReader(op)
	next := func(want string) (*tar.Header, error) {
		h, err := tr.Next()
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if want != "" && h.Name != want {
			return nil, fmt.Errorf("%w: found %q where %q was expected", ErrCorrupt, h.Name, want)
		}
		return h, nil
	}
	readAll := func(h *tar.Header) ([]byte, error) {
		if h.Size > maxDataFile {
			return nil, fmt.Errorf("%w: %s is too large", ErrCorrupt, h.Name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return b, nil
	}
	u = &Unpacked{}
	h, err := next(tarVerifier)
	if err != nil {
		return nil, err
	}
	vb, err := readAll(h)
	if err != nil {
		return nil, err
	}
	own, err := audit.ParseVerifierKey(strings.TrimSpace(string(vb)))
	if err != nil {
		return nil, fmt.Errorf("%w: the backup's verifier key: %v", ErrCorrupt, err)
	}
	u.Verifier, u.OwnKey = own, key == nil
	if key != nil {
		if key.String() != own.String() {
			return nil, fmt.Errorf("the backup was signed by audit key %s, not by the key given (%s): it is not a backup of this deployment", own.Name(), key.Name())
		}
		u.Verifier = *key
	}
	if h, err = next(tarManifest); err != nil {
		return nil, err
	}
	if u.Note, err = readAll(h); err != nil {
		return nil, err
	}
	if u.Manifest, err = OpenManifest(u.Note, u.Verifier); err != nil {
		return nil, err
	}
	m := u.Manifest
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		switch {
		case h.Name == tarAnchor || h.Name == tarPrevious:
			b, err := readAll(h)
			if err != nil {
				return nil, err
			}
			if h.Name == tarAnchor {
				u.Anchor = b
			} else {
				u.Previous = b
			}
		case strings.HasPrefix(h.Name, tarData) || h.Name == tarDB:
			rel := strings.TrimPrefix(h.Name, tarData)
			if h.Name == tarDB {
				rel = DBPath
			}
			f, ok := m.File(rel)
			if !ok || seen[rel] || !filepath.IsLocal(filepath.FromSlash(rel)) || h.Typeflag != tar.TypeReg {
				return nil, fmt.Errorf("%w: %q is not a file the manifest lists", ErrCorrupt, h.Name)
			}
			seen[rel] = true
			if err := extract(ctx, tr, dir, rel, h, f); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: unexpected entry %q", ErrCorrupt, h.Name)
		}
	}
	// The tar stream has ended: the rest of the file must be its padding and the final chunk.
	if _, err := io.Copy(io.Discard, op); err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if !seen[f.Path] {
			return nil, fmt.Errorf("%w: %s, listed in the manifest, is missing", ErrCorrupt, f.Path)
		}
	}
	if m.Store == "sqlite" {
		c, err := audit.OpenCheckpoint(u.Anchor, u.Verifier)
		if err != nil || c.Size != m.AuditSize || c.Root != m.AuditRoot || c.Origin != m.Origin {
			return nil, fmt.Errorf("%w: the backup's checkpoint does not match its manifest", ErrCorrupt)
		}
	}
	return u, nil
}

func extract(ctx context.Context, tr io.Reader, dir, rel string, h *tar.Header, f File) error {
	path := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	mode := os.FileMode(h.Mode) & 0o644                                          // #nosec G115 -- a permission mask
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600) // #nosec G304 -- inside the new dir, a local path
	if err != nil {
		return err
	}
	hs := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, hs), &ctxReader{ctx, tr})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return err
		}
		return fmt.Errorf("restore %s: %w", rel, err)
	}
	if n != f.Size || hex.EncodeToString(hs.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("%w: %s does not match its digest in the signed manifest (the backup was tampered with)", ErrCorrupt, rel)
	}
	return nil
}

// CheckResult is what Check verified.
type CheckResult struct {
	Audit  *audit.Report
	Tables int
}

// ReadEpochs reads DIR/audit-epochs.json (none when it does not exist).
func ReadEpochs(dir string) ([]audit.Epoch, error) {
	data, err := os.ReadFile(filepath.Join(dir, EpochsFile)) // #nosec G304 -- data dir path
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return audit.UnmarshalEpochs(data)
}

// Check verifies a restored database against its manifest: the audit log verifies across its
// epochs, with every stored checkpoint and the backup's own, and holds exactly the manifest's
// entries with its root; every table holds the manifest's number of rows.
func Check(ctx context.Context, db SnapshotDB, dir string, u *Unpacked) (CheckResult, error) {
	var out CheckResult
	m := u.Manifest
	stored, err := db.AuditCheckpoints(ctx)
	if err != nil {
		return out, err
	}
	epochs, err := ReadEpochs(dir)
	if err != nil {
		return out, err
	}
	cps := append(audit.SignedCheckpoints(stored), audit.SignedCheckpoint{Note: u.Anchor, Source: "the backup's checkpoint", Witness: true})
	rep, err := audit.VerifyEpochs(ctx, audit.StoreLog{Store: db}, cps, epochs, u.Verifier, nil)
	if err != nil {
		return out, fmt.Errorf("the restored audit log does not verify: %w", err)
	}
	if rep.Entries != m.AuditSize || rep.Root != m.AuditRoot {
		return out, fmt.Errorf("the restored audit log holds %d entries, the manifest %d", rep.Entries, m.AuditSize)
	}
	out.Audit = rep
	counts, err := db.TableCounts(ctx)
	if err != nil {
		return out, err
	}
	for name, want := range m.Tables {
		if name == "schema_migrations" {
			continue // a newer build may have migrated the restored database
		}
		if got := counts[name]; got != want {
			return out, fmt.Errorf("table %s holds %d rows after the restore, the manifest says %d", name, got, want)
		}
		out.Tables++
	}
	return out, nil
}

// StartEpoch opens a new epoch of the restored log: its first entry, at index
// Manifest.AuditSize, records the restore by operator and names the epoch, whose record
// (linking to the backup's checkpoints) is added to DIR/audit-epochs.json; then a checkpoint
// is signed.
func StartEpoch(ctx context.Context, dir string, alog *audit.Log, db audit.AuditReader, u *Unpacked, operator string, now time.Time) (audit.Epoch, error) {
	epochs, err := ReadEpochs(dir)
	if err != nil {
		return audit.Epoch{}, err
	}
	m := u.Manifest
	e := audit.Epoch{Number: len(epochs) + 2, Start: m.AuditSize, RestoredAt: now.UTC(), BackupID: m.ID, Anchor: u.Anchor, Previous: u.Previous}
	desc := fmt.Sprintf("restored from backup %s of %s: epoch %d starts at entry %d, after the backup's %d entries (root %x); entries the original log held after them are not in this log",
		m.ID, m.Created.Format(time.RFC3339), e.Number, e.Start, m.AuditSize, m.AuditRoot[:8])
	if m.Store != "sqlite" {
		desc = fmt.Sprintf("restored: the database from its own backup, the data dir from backup %s of %s: epoch %d starts at entry %d, after the %d entries of the restored database's log (root %x), which verified against its stored checkpoints; entries the original log held after them are not in this log",
			m.ID, m.Created.Format(time.RFC3339), e.Number, e.Start, m.AuditSize, m.AuditRoot[:8])
	}
	if m.LastCheckpoint >= 0 {
		desc += fmt.Sprintf("; the backup's last checkpoint covered %d entries", m.LastCheckpoint)
	}
	if size, err := db.AuditSize(ctx); err != nil {
		return e, err
	} else if size != e.Start {
		return e, fmt.Errorf("the restored log holds %d entries, the backup %d: restore into a new directory and start nothing on it before the restore ends", size, e.Start)
	}
	if err := alog.Append(ctx, audit.Entry{Action: audit.ActionExecute, Type: "system", Subtype: audit.RestoreSubtype,
		AgentType: audit.AgentOperator, AgentID: operator, Resources: []string{e.Resource(), "Backup/" + m.ID}, OutcomeDesc: desc}); err != nil {
		return e, fmt.Errorf("record the restore in the audit log: %w", err)
	}
	data, err := audit.MarshalEpochs(append(epochs, e))
	if err != nil {
		return e, err
	}
	if err := replaceFile(filepath.Join(dir, EpochsFile), data, 0o600); err != nil {
		return e, err
	}
	if _, err := alog.Checkpoint(ctx); err != nil {
		return e, err
	}
	return e, nil
}

// DatabaseAnchor prepares the epoch of a PostgreSQL restore, whose database was restored with
// PostgreSQL's tools (pg_restore, a base backup) and whose data dir backup u holds no
// snapshot: the restored database's log, which rep reports verified against its stored
// checkpoints (and the data dir's epoch records), is what the new epoch follows. It returns u
// with the manifest's audit fields set to that log (size, root, last stored checkpoint), the
// anchor a checkpoint of it signed now by signer (the data dir's audit key: no checkpoint of
// exactly that size may exist, since pg_dump does not sign one), and Previous the last stored
// checkpoint, which links the epoch to the database backup's log.
func DatabaseAnchor(u *Unpacked, rep *audit.Report, stored []vitalgate.AuditCheckpoint, signer *audit.Signer) (*Unpacked, error) {
	if u.Manifest.Store == "sqlite" {
		return nil, errors.New("a SQLite backup holds its own anchor")
	}
	out := *u
	out.Manifest.AuditSize, out.Manifest.AuditRoot, out.Manifest.LastCheckpoint = rep.Entries, rep.Root, -1
	out.Previous = nil
	if len(stored) > 0 {
		last := stored[len(stored)-1]
		out.Manifest.LastCheckpoint, out.Previous = int64(last.Size), last.Note // #nosec G115 -- a tree size
	}
	anchor, err := audit.SignCheckpoint(audit.Checkpoint{Origin: out.Manifest.Origin, Size: rep.Entries, Root: rep.Root}, signer)
	if err != nil {
		return nil, err
	}
	out.Anchor = anchor
	return &out, nil
}

// Shredder destroys data keys of a restored store.
type Shredder interface {
	// EachDataKey calls fn with the site and blind index of every stored data key.
	EachDataKey(ctx context.Context, fn func(site string, patientIndex []byte) error) error
	// ShredPatient deletes a patient's data key and data, with the audit entries, in one
	// transaction, and returns the number of data keys deleted.
	ShredPatient(ctx context.Context, site string, patientIndex []byte, audit ...[]byte) (int, error)
}

// KEKShredder replaces a keyring's key-encryption key and destroys the old one (vault.Vault).
type KEKShredder interface {
	ShredKEK(ctx context.Context, site string) (vault.Shredded, error)
}

// Replayed says what ReplayTombstones did.
type Replayed struct {
	Tombstones int // tombstones newer than the backup
	DataKeys   int // data keys destroyed
	Sites      []string
}

// ReplayTombstones reads the tombstone list from r, refusing it whole if any tombstone is not
// signed by the backup's tombstone key, and replays every tombstone the restored data dir does
// not hold (the erasures after the backup): the data keys they name are deleted with the
// patients' data, each keyring concerned gets a new key-encryption key and the old one is
// destroyed (so no copy of the deleted wrapped keys can be unwrapped), and the tombstones are
// added to the restored list. Each replay is audited.
func ReplayTombstones(ctx context.Context, dir, origin string, r io.Reader, db Shredder, keks KEKShredder, alog *audit.Log, operator string) (Replayed, error) {
	var out Replayed
	k, err := LoadTombstoneKey(dir, origin, false)
	if err != nil {
		return out, fmt.Errorf("the backup holds no tombstone key, so no tombstone can be checked: %w", err)
	}
	list, err := ReadTombstones(r, k.Verifier())
	if err != nil {
		return out, err
	}
	known := map[string]bool{}
	if f, err := os.Open(filepath.Join(dir, TombstonesFile)); err == nil { // #nosec G304 -- data dir path
		own, rerr := ReadTombstones(f, k.Verifier())
		_ = f.Close()
		if rerr != nil {
			return out, fmt.Errorf("the backup's own tombstone list: %w", rerr)
		}
		for _, t := range own {
			known[t.ID] = true
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return out, err
	}
	want := map[string]string{} // data-key id -> tombstone id
	var fresh []Tombstone
	for _, t := range list {
		if known[t.ID] {
			continue
		}
		known[t.ID] = true
		fresh = append(fresh, t)
		for _, id := range t.DataKeys {
			want[id] = t.ID
		}
	}
	out.Tombstones = len(fresh)
	if len(fresh) == 0 {
		return out, nil
	}
	type target struct {
		site string
		idx  []byte
		ts   string
	}
	var targets []target
	if err := db.EachDataKey(ctx, func(site string, idx []byte) error {
		if ts, ok := want[k.DataKeyID(site, idx)]; ok {
			targets = append(targets, target{site, bytes.Clone(idx), ts})
		}
		return nil
	}); err != nil {
		return out, err
	}
	for _, t := range targets {
		e := alog.Encode(ctx, audit.Entry{Action: audit.ActionDelete, Type: "admin", Subtype: "erasure-replay",
			AgentType: audit.AgentOperator, AgentID: operator, Site: t.site, PatientIndex: audit.PatientIndex(t.idx),
			OutcomeDesc: "erasure " + t.ts + " (after the backup) replayed by the restore: data key destroyed"})
		n, err := db.ShredPatient(ctx, t.site, t.idx, e)
		if err != nil {
			return out, fmt.Errorf("destroy the data key of erasure %s: %w", t.ts, err)
		}
		out.DataKeys += n
		if !slices.Contains(out.Sites, t.site) {
			out.Sites = append(out.Sites, t.site)
		}
	}
	for _, site := range out.Sites {
		sh, err := keks.ShredKEK(ctx, site)
		if err != nil {
			return out, fmt.Errorf("replace the key-encryption key of site %s after the replayed erasures: %w", site, err)
		}
		if err := alog.Append(ctx, audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "keys-rotate",
			AgentType: audit.AgentOperator, AgentID: operator, Count: sh.Rewrapped, Site: site,
			OutcomeDesc: fmt.Sprintf("after replayed erasures: new key-encryption key %s, %d old destroyed", sh.NewKEK, len(sh.Destroyed))}); err != nil {
			return out, err
		}
	}
	var lines []byte
	for _, t := range fresh {
		l, err := k.Line(t)
		if err != nil {
			return out, err
		}
		lines = append(lines, l...)
	}
	if err := appendSync(filepath.Join(dir, TombstonesFile), lines); err != nil {
		return out, err
	}
	return out, nil
}
