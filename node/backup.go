package node

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/backup"
	"github.com/vitalgate/vitalgate/erasure"
	"github.com/vitalgate/vitalgate/postgres"
	"github.com/vitalgate/vitalgate/sqlite"
)

// BackupFiles lists the files of data dir dir that a backup holds (relative paths, sorted):
// every regular file (keys, certificates, configuration, the tombstone list and epoch
// records) but the SQLite database and its companions, which the backup snapshots, and
// temporary files.
func BackupFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		switch {
		case !d.Type().IsRegular(),
			rel == DBFile, rel == DBFile+"-wal", rel == DBFile+"-shm", rel == DBFile+"-journal",
			strings.HasPrefix(name, ".backup-"), strings.HasSuffix(name, ".tmp"):
			return nil
		}
		out = append(out, rel)
		return nil
	})
	return out, err
}

// ErasureService returns the erasure capability of the node, auditing to alog, whose
// erasures are recorded as backup tombstones.
func (n *Node) ErasureService(alog *audit.Log) *erasure.Service {
	s := erasure.New(n.Store, n.Vault, alog, n.env.Now)
	s.SetTombstones(backup.Tombstones{Dir: n.Dir, Origin: n.AuditOrigin()})
	return s
}

// BackupSource describes the node's data dir for backup.Create: on SQLite a snapshot of the
// database is taken while the server runs; on PostgreSQL the database is backed up with its
// own tools and the backup holds the data dir's files.
func (n *Node) BackupSource() (backup.Source, error) {
	signer, err := n.AuditSigner()
	if err != nil {
		return backup.Source{}, err
	}
	src := backup.Source{Dir: n.Dir, Store: storeDriver(n.Store), Signer: signer, Origin: n.AuditOrigin(), Now: n.env.Now,
		Files: func() ([]string, error) { return BackupFiles(n.Dir) }}
	if db, ok := n.Store.(*sqlite.DB); ok {
		src.Snapshot = db.Snapshot
		src.OpenSnapshot = func(ctx context.Context, path string) (backup.SnapshotDB, func() error, error) {
			snap, err := sqlite.Open(ctx, path, sqlite.Options{Readers: 1})
			if err != nil {
				return nil, nil, err
			}
			return snap, snap.Close, nil
		}
	}
	return src, nil
}

// RestoredStore is what a restore needs of the restored data dir's store (SQLite).
type RestoredStore interface {
	backup.SnapshotDB
	backup.Shredder
}

// Shredder returns the node's store as a tombstone replay needs it (SQLite or PostgreSQL).
func (n *Node) Shredder() (backup.Shredder, error) {
	switch db := n.Store.(type) {
	case *sqlite.DB:
		return db, nil
	case *postgres.DB:
		return db, nil
	}
	return nil, errors.New("the data dir's store cannot replay tombstones")
}

// ErrNotSQLite means the data dir's store is not SQLite.
var ErrNotSQLite = errors.New("the data dir's store is not SQLite")

// Restored returns the node's store as a restore needs it.
func (n *Node) Restored() (RestoredStore, error) {
	db, ok := n.Store.(*sqlite.DB)
	if !ok {
		return nil, ErrNotSQLite
	}
	return db, nil
}
