package main

import (
	"bufio"
	"context"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/backup"
	vgnode "github.com/vitalgate/vitalgate/node"
)

// runBackup is `vitalgate backup --data DIR --out FILE --recovery-pub FILE`, and its
// subcommands `backup keys init` and `backup tombstones`.
func (m *Main) runBackup(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "keys":
			return m.dispatch(ctx, "backup keys", args[1:], map[string]func(context.Context, []string) error{"init": m.backupKeysInit})
		case "tombstones":
			return m.backupTombstones(ctx, args[1:])
		}
	}
	fs := m.flags("backup", "backup --data DIR --out FILE --recovery-pub FILE [--json]\n"+
		"       vitalgate backup keys init --out DIR\n"+
		"       vitalgate backup tombstones --data DIR --export FILE")
	dir := fs.String("data", "", "data directory (the server may be running)")
	out := fs.String("out", "", "the backup file to write (must not exist)")
	pubFile := fs.String("recovery-pub", "", "the recovery public key (recovery.pub from `vitalgate backup keys init`)")
	asJSON := fs.Bool("json", false, "print what the backup holds as JSON")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *out == "" || *pubFile == "" {
		return errors.New("backup needs --out FILE and --recovery-pub FILE (create the recovery key pair with `vitalgate backup keys init --out DIR`, away from the server)")
	}
	pemPub, err := os.ReadFile(*pubFile) // #nosec G304 -- the operator names the file
	if err != nil {
		return err
	}
	pub, err := backup.ParseRecoveryPublicKey(pemPub)
	if err != nil {
		return err
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s exists: a backup never overwrites a file; choose a new name", *out)
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	src, err := n.BackupSource()
	if err != nil {
		return err
	}
	start := time.Now()
	partial := *out + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the operator names the file
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	man, err := backup.Create(ctx, src, w, pub)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(partial, *out)
	}
	if err != nil {
		_ = os.Remove(partial)
		return fmt.Errorf("backup failed, nothing was written to %s: %w", *out, err)
	}
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fp := sha256.Sum256(pemPub)
	rec := &backup.BackupRecord{ID: man.ID, At: man.Created, Store: man.Store, Entries: man.AuditSize, Bytes: st.Size(),
		Seconds: time.Since(start).Seconds(), Encrypted: "HPKE DHKEM(P-256)/HKDF-SHA-256/AES-256-GCM to recovery key " + hex.EncodeToString(fp[:6])}
	if err := backup.RecordStatus(n.dir, rec, nil); err != nil {
		return fmt.Errorf("backup %s written, but its record for the evidence report failed: %w", man.ID, err)
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		return err
	}
	if err := alog.Append(ctx, audit.Entry{Action: audit.ActionExecute, Type: "admin", Subtype: "backup", AgentType: audit.AgentOperator,
		AgentID: operator(), Resources: []string{"Backup/" + man.ID}, Count: len(man.Files),
		OutcomeDesc: fmt.Sprintf("backup %s: %d audit entries, %d files, %d bytes, encrypted to recovery key %s", man.ID, man.AuditSize, len(man.Files), st.Size(), hex.EncodeToString(fp[:6]))}); err != nil {
		return fmt.Errorf("backup %s written but not audited: %w", man.ID, err)
	}
	if !*asJSON {
		fmt.Fprintf(m.Stderr, "Backup %s written to %s (%d bytes, %d files, %d audit entries), encrypted to recovery key %s, in %.2fs.\n",
			man.ID, *out, st.Size(), len(man.Files), man.AuditSize, hex.EncodeToString(fp[:6]), time.Since(start).Seconds())
	}
	if man.Store == "postgres" {
		fmt.Fprintln(m.Stderr, "The store is PostgreSQL: this backup holds the data dir (keys, certificates, configuration); back the database up with pg_dump or a base backup (see README, \"Backup and recovery\").")
	}
	if c, err := backup.ReadConfig(n.dir); err == nil && c.TombstonesExport == "" {
		fmt.Fprintf(m.Stderr, "Warning: no tombstone export is configured, so a restore of this backup cannot replay erasures made after it.\n"+
			"Configure one outside the data dir: `vitalgate backup tombstones --data %s --export /elsewhere/tombstones.log`.\n", *dir)
	}
	if *asJSON {
		return json.NewEncoder(m.Stdout).Encode(map[string]any{"id": man.ID, "created": man.Created, "store": man.Store,
			"audit_entries": man.AuditSize, "audit_root": hex.EncodeToString(man.AuditRoot[:]), "last_checkpoint": man.LastCheckpoint,
			"tables": man.Tables, "files": len(man.Files), "bytes": st.Size(), "tombstones": man.Tombstones})
	}
	return nil
}

// backupKeysInit creates the recovery key pair in a new directory of the operator's.
func (m *Main) backupKeysInit(_ context.Context, args []string) error {
	fs := m.flags("backup keys init", "backup keys init --out DIR")
	out := fs.String("out", "", "a directory for the recovery key pair, away from the server (created, mode 0700)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup keys init needs --out DIR: a directory away from the server (the private key never goes into a data dir)")
	}
	if _, err := os.Stat(filepath.Join(*out, vgnode.CACertFile)); err == nil {
		return fmt.Errorf("%s is a data dir: keep the recovery key away from the server", *out)
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	priv, pub, err := backup.GenerateRecoveryKey(nil)
	if err != nil {
		return err
	}
	keyPath, pubPath := filepath.Join(*out, backup.RecoveryKeyFile), filepath.Join(*out, backup.RecoveryPubFile)
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists: a recovery key is never overwritten (the backups encrypted to it need it)", p)
		}
	}
	if err := writeNewFile(keyPath, priv, 0o600); err != nil {
		return err
	}
	if err := writeNewFile(pubPath, pub, 0o644); err != nil {
		return err
	}
	fp := sha256.Sum256(pub)
	fmt.Fprintf(m.Stderr, "Recovery key pair %s created: %s (private: keep it offline, it decrypts every backup) and %s (public: give it to `vitalgate backup --recovery-pub`).\n",
		hex.EncodeToString(fp[:6]), keyPath, pubPath)
	return nil
}

func writeNewFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode) // #nosec G304 -- the operator names the directory
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

// backupTombstones configures the tombstone export and brings the exported list up to date.
func (m *Main) backupTombstones(ctx context.Context, args []string) error {
	fs := m.flags("backup tombstones", "backup tombstones --data DIR --export FILE")
	dir := fs.String("data", "", "data directory")
	export := fs.String("export", "", "absolute path, outside the data dir, to which every erasure's tombstone is appended")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *export == "" {
		return errors.New("backup tombstones needs --export FILE (an absolute path outside the data dir)")
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if _, err := backup.LoadTombstoneKey(n.dir, n.AuditOrigin(), true); err != nil {
		return err
	}
	if err := backup.SetTombstonesExport(n.dir, *export); err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "Erasure tombstones are exported to %s. Keep that file where backups and restores do not write; a restore replays it with `vitalgate restore --tombstones %s`.\n", *export, *export)
	return nil
}

// runRestore is `vitalgate restore`.
func (m *Main) runRestore(ctx context.Context, args []string) error {
	fs := m.flags("restore", "restore --in FILE --data NEWDIR --recovery-key KEY [--tombstones FILE] [--key audit.pub] [--json]\n"+
		"       vitalgate restore --verify-only --in FILE --recovery-key KEY [--tombstones FILE] [--key audit.pub] [--record DIR] [--json]")
	in := fs.String("in", "", "the backup file")
	dir := fs.String("data", "", "the new data dir to restore into (must not exist)")
	keyFile := fs.String("recovery-key", "", "the recovery private key (recovery.key)")
	tombFile := fs.String("tombstones", "", "the exported tombstone list: erasures after the backup are replayed before the data dir can be served")
	verifier := fs.String("key", "", "your kept copy of the deployment's audit.pub: the backup must be signed by it (default: the key inside the backup)")
	verifyOnly := fs.Bool("verify-only", false, "restore into a temporary directory, check everything, and delete it")
	record := fs.String("record", "", "with --verify-only: the live data dir in which to record the result (for the evidence report)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *in == "" || *keyFile == "" {
		return errors.New("restore needs --in FILE and --recovery-key KEY")
	}
	if *verifyOnly == (*dir != "") {
		return errors.New("restore needs --data NEWDIR (a new directory), or --verify-only to check the backup without keeping it")
	}
	if *record != "" && !*verifyOnly {
		return errors.New("--record goes with --verify-only (a restore records its result in the restored data dir)")
	}
	start := time.Now()
	keyPEM, err := os.ReadFile(*keyFile) // #nosec G304 -- the operator names the file
	if err != nil {
		return err
	}
	priv, err := backup.ParseRecoveryKey(keyPEM)
	if err != nil {
		return err
	}
	var key *audit.Verifier
	if *verifier != "" {
		v, err := vgnode.ReadVerifier(*verifier)
		if err != nil {
			return fmt.Errorf("verifier key %s: %w", *verifier, err)
		}
		key = &v
	}
	target := *dir
	if *verifyOnly {
		tmp, err := os.MkdirTemp("", "vitalgate-verify-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		target = filepath.Join(tmp, "data")
	} else if _, err := os.Stat(target); err == nil {
		return fmt.Errorf("%s exists: restore into a new directory (the restore never overwrites a data dir)", target)
	}
	staging := target + ".restoring"
	_ = os.RemoveAll(staging) // a restore that was interrupted
	res, rerr := m.restore(ctx, *in, priv, key, staging, *tombFile, *verifyOnly)
	res.Seconds = time.Since(start).Seconds()
	if rerr == nil && !*verifyOnly {
		rerr = os.Rename(staging, target)
	}
	if rerr != nil {
		_ = os.RemoveAll(staging)
	}
	vr := &backup.VerifyRecord{ID: res.ID, BackupAt: res.BackupAt, At: m.Now().UTC(), OK: rerr == nil, Entries: res.Entries, Tables: res.Tables,
		Seconds: res.Seconds, Tombstones: res.Replayed.Tombstones}
	if rerr != nil {
		vr.Problem = rerr.Error()
	}
	if *record != "" {
		if err := m.recordVerification(ctx, *record, vr); err != nil {
			return errors.Join(rerr, err)
		}
	} else if rerr == nil && !*verifyOnly { // a verification without --record keeps nothing
		if err := backup.RecordStatus(target, nil, vr); err != nil {
			return err
		}
	}
	if rerr != nil {
		return fmt.Errorf("RESTORE REFUSED: %w", rerr)
	}
	size := dirSize(target)
	if *verifyOnly {
		size = dirSize(staging)
	}
	if *asJSON {
		return json.NewEncoder(m.Stdout).Encode(map[string]any{"ok": true, "id": res.ID, "backup_created": res.BackupAt, "verify_only": *verifyOnly,
			"audit_entries": res.Entries, "epoch": res.Epoch, "tables": res.Tables, "tombstones_replayed": res.Replayed.Tombstones,
			"data_keys_destroyed": res.Replayed.DataKeys, "seconds": res.Seconds, "data_bytes": size, "own_key": res.OwnKey})
	}
	if res.OwnKey {
		fmt.Fprintf(m.Stderr, "Note: the manifest was checked with the audit key inside the backup; pass --key with your kept copy of audit.pub to check the backup is your deployment's.\n")
	}
	if *tombFile == "" {
		fmt.Fprintf(m.Stderr, "Warning: no --tombstones given: patients erased after this backup (%s) are NOT erased in the restored data.\n", res.BackupAt.Format(time.RFC3339))
	}
	what := "restored into " + target
	if *verifyOnly {
		what = "verified (restored into a temporary directory, now deleted)"
	}
	if res.Epoch == 0 { // PostgreSQL, verified only: the data dir
		fmt.Fprintf(m.Stdout, "OK: backup %s of %s: the data dir is %s (%d bytes); the PostgreSQL database is not part of it; %.2fs\n",
			res.ID, res.BackupAt.Format(time.RFC3339), what, size, res.Seconds)
		return nil
	}
	if res.Store == "postgres" {
		fmt.Fprintf(m.Stdout, "OK: backup %s of %s: the data dir is %s (%d bytes); the PostgreSQL database's %d audit entries verify, epoch %d starts at entry %d; %d tombstones replayed into the PostgreSQL database (%d data keys destroyed); %.2fs\n",
			res.ID, res.BackupAt.Format(time.RFC3339), what, size, res.Entries, res.Epoch, res.Entries, res.Replayed.Tombstones, res.Replayed.DataKeys, res.Seconds)
		return nil
	}
	fmt.Fprintf(m.Stdout, "OK: backup %s of %s %s: %d audit entries verify, %d tables match the manifest, %d tombstones replayed (%d data keys destroyed); epoch %d starts at entry %d; %d bytes of data; %.2fs\n",
		res.ID, res.BackupAt.Format(time.RFC3339), what, res.Entries, res.Tables, res.Replayed.Tombstones, res.Replayed.DataKeys, res.Epoch, res.Entries, size, res.Seconds)
	return nil
}

// restoreResult is what m.restore did.
type restoreResult struct {
	ID       string
	BackupAt time.Time
	Entries  uint64
	Tables   int
	Epoch    int
	Replayed backup.Replayed
	OwnKey   bool
	Origin   string
	Store    string
	Seconds  float64
}

// restore unpacks the backup into staging and, on SQLite, checks it, starts the new audit
// epoch, replays the tombstones and verifies the audit log again.
func (m *Main) restore(ctx context.Context, in string, priv hpke.PrivateKey, key *audit.Verifier, staging, tombFile string, verifyOnly bool) (restoreResult, error) {
	var res restoreResult
	f, err := os.Open(in) // #nosec G304 -- the operator names the file
	if err != nil {
		return res, err
	}
	defer f.Close()
	u, err := backup.Unpack(ctx, bufio.NewReaderSize(f, 1<<20), priv, key, staging)
	if err != nil {
		return res, err
	}
	man := u.Manifest
	res.ID, res.BackupAt, res.OwnKey, res.Origin, res.Store = man.ID, man.Created, u.OwnKey, man.Origin, man.Store
	if man.Store != "sqlite" {
		return res, m.restorePostgres(ctx, u, staging, tombFile, verifyOnly, &res)
	}
	n, err := m.openDataDir(ctx, staging)
	if err != nil {
		return res, fmt.Errorf("open the restored data dir: %w", err)
	}
	defer n.Close()
	rs, err := n.Restored()
	if err != nil {
		return res, err
	}
	chk, err := backup.Check(ctx, rs, staging, u)
	if err != nil {
		return res, err
	}
	res.Tables = chk.Tables
	alog, err := n.AuditLog("restore")
	if err != nil {
		return res, err
	}
	ep, err := backup.StartEpoch(ctx, staging, alog, rs, u, operator(), m.Now())
	if err != nil {
		return res, err
	}
	res.Epoch, res.Entries = ep.Number, ep.Start
	if tombFile != "" {
		tf, err := os.Open(tombFile) // #nosec G304 -- the operator names the file
		if err != nil {
			return res, fmt.Errorf("the tombstone list: %w", err)
		}
		res.Replayed, err = backup.ReplayTombstones(ctx, staging, n.AuditOrigin(), tf, rs, n.Vault, alog, operator())
		_ = tf.Close()
		if err != nil {
			return res, err
		}
	}
	if _, err := alog.Checkpoint(ctx); err != nil {
		return res, err
	}
	stored, err := rs.AuditCheckpoints(ctx)
	if err != nil {
		return res, err
	}
	epochs, err := backup.ReadEpochs(staging)
	if err != nil {
		return res, err
	}
	if _, err := audit.VerifyEpochs(ctx, audit.StoreLog{Store: rs}, audit.SignedCheckpoints(stored), epochs, u.Verifier, nil); err != nil {
		return res, fmt.Errorf("the restored audit log does not verify after the restore: %w", err)
	}
	return res, nil
}

// restorePostgres finishes the restore of a PostgreSQL data dir: its files are back, and the
// database was restored first with PostgreSQL's tools (pg_restore, a base backup). The
// restored database's audit log must verify; a new audit epoch starts after it, as a SQLite
// restore's does, with a checkpoint of it signed now and linked to its last stored checkpoint;
// with tombstones, the erasures after the backup are replayed into the database; then the log
// verifies again across its epochs. A verification only checks the tombstones: the data dir it
// restored names the live database.
func (m *Main) restorePostgres(ctx context.Context, u *backup.Unpacked, staging, tombFile string, verifyOnly bool, res *restoreResult) error {
	if verifyOnly {
		if tombFile == "" {
			return nil
		}
		tf, err := os.Open(tombFile) // #nosec G304 -- the operator names the file
		if err != nil {
			return fmt.Errorf("the tombstone list: %w", err)
		}
		defer tf.Close()
		k, err := backup.LoadTombstoneKey(staging, res.Origin, false)
		if err != nil {
			return fmt.Errorf("the backup holds no tombstone key, so no tombstone can be checked: %w", err)
		}
		_, err = backup.ReadTombstones(tf, k.Verifier())
		return err
	}
	fmt.Fprintln(m.Stderr, "The backup's store is PostgreSQL: the data dir (keys, certificates, configuration) is restored onto the database, which must be restored first "+
		"(pg_restore, or its base backup); its audit log is verified and a new audit epoch started on it.")
	n, err := m.openDataDir(ctx, staging)
	if err != nil {
		return fmt.Errorf("open the restored data dir and its PostgreSQL database (restore the database with pg_restore first): %w", err)
	}
	defer n.Close()
	stored, err := n.store.AuditCheckpoints(ctx)
	if err != nil {
		return err
	}
	epochs, err := backup.ReadEpochs(staging)
	if err != nil {
		return err
	}
	rep, err := audit.VerifyEpochs(ctx, audit.StoreLog{Store: n.store}, audit.SignedCheckpoints(stored), epochs, u.Verifier, nil)
	if err != nil {
		return fmt.Errorf("the restored database's audit log does not verify: %w", err)
	}
	signer, err := n.AuditSigner()
	if err != nil {
		return err
	}
	pu, err := backup.DatabaseAnchor(u, rep, stored, signer)
	if err != nil {
		return err
	}
	alog, err := n.AuditLog("restore")
	if err != nil {
		return err
	}
	ep, err := backup.StartEpoch(ctx, staging, alog, n.store, pu, operator(), m.Now())
	if err != nil {
		return err
	}
	res.Epoch, res.Entries = ep.Number, ep.Start
	if tombFile != "" {
		tf, err := os.Open(tombFile) // #nosec G304 -- the operator names the file
		if err != nil {
			return fmt.Errorf("the tombstone list: %w", err)
		}
		defer tf.Close()
		sh, err := n.Shredder()
		if err != nil {
			return err
		}
		if res.Replayed, err = backup.ReplayTombstones(ctx, staging, n.AuditOrigin(), tf, sh, n.Vault, alog, operator()); err != nil {
			return err
		}
	}
	if _, err := alog.Checkpoint(ctx); err != nil {
		return err
	}
	if stored, err = n.store.AuditCheckpoints(ctx); err != nil {
		return err
	}
	if epochs, err = backup.ReadEpochs(staging); err != nil {
		return err
	}
	if _, err := audit.VerifyEpochs(ctx, audit.StoreLog{Store: n.store}, audit.SignedCheckpoints(stored), epochs, u.Verifier, nil); err != nil {
		return fmt.Errorf("the restored audit log does not verify after the restore: %w", err)
	}
	return nil
}

// recordVerification records a verification's result in a live data dir, and audits it there.
func (m *Main) recordVerification(ctx context.Context, dir string, vr *backup.VerifyRecord) error {
	n, err := m.openDataDir(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := backup.RecordStatus(n.dir, nil, vr); err != nil {
		return err
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		return err
	}
	outcome, desc := audit.OutcomeSuccess, fmt.Sprintf("backup %s verified: %d audit entries, %d tables", vr.ID, vr.Entries, vr.Tables)
	if !vr.OK {
		outcome, desc = audit.OutcomeSeriousFailure, "backup verification failed: "+firstLine(vr.Problem)
	}
	return alog.Append(ctx, audit.Entry{Action: audit.ActionExecute, Type: "admin", Subtype: "backup-verify", AgentType: audit.AgentOperator,
		AgentID: operator(), Outcome: outcome, Resources: []string{"Backup/" + orUnknown(vr.ID)}, OutcomeDesc: desc})
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if i, err := d.Info(); err == nil {
				n += i.Size()
			}
		}
		return nil
	})
	return n
}
