package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/updates"
)

// The online keys of the update repository (secret, mode 0600): every node of a deployment
// needs the same files, like token.key, so that any node re-signs the timestamp and snapshot.
const (
	UpdateSnapshotKeyFile  = "update-snapshot.key"
	UpdateTimestampKeyFile = "update-timestamp.key"
)

// DefaultUpdateRefresh is how often serve checks whether the timestamp and snapshot need
// re-signing.
const DefaultUpdateRefresh = time.Minute

// UpdateOnlineKeys loads the update repository's snapshot and timestamp keys, creating them
// on first use (init creates them, so that copies of a new data dir carry them).
func (n *Node) UpdateOnlineKeys() (*updates.OnlineKeys, error) { return updateOnlineKeys(n.Dir) }

func updateOnlineKeys(dir string) (*updates.OnlineKeys, error) {
	var pems [2][]byte
	for i, name := range []string{UpdateSnapshotKeyFile, UpdateTimestampKeyFile} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			data, err := updates.GenerateKeyPEM(nil)
			if err != nil {
				return nil, err
			}
			if err := writeFile(path, data, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("write %s: %w", name, err)
			}
		}
		data, err := readSecretFile(path)
		if err != nil {
			return nil, err
		}
		pems[i] = data
	}
	keys, err := updates.ParseOnlineKeys(pems[0], pems[1])
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", UpdateSnapshotKeyFile, UpdateTimestampKeyFile, err)
	}
	return keys, nil
}

// NewOnlineKeys makes new snapshot and timestamp keys for a root rotation and returns them
// with a function that installs them in the data dir in place of the current ones; call it
// once the new root is published (then copy both files to every other node).
func (n *Node) NewOnlineKeys() (*updates.OnlineKeys, func() error, error) {
	var pems [2][]byte
	for i := range pems {
		data, err := updates.GenerateKeyPEM(nil)
		if err != nil {
			return nil, nil, err
		}
		pems[i] = data
	}
	keys, err := updates.ParseOnlineKeys(pems[0], pems[1])
	if err != nil {
		return nil, nil, err
	}
	install := func() error {
		for i, name := range []string{UpdateSnapshotKeyFile, UpdateTimestampKeyFile} {
			path := filepath.Join(n.Dir, name)
			tmp := path + ".new"
			_ = os.Remove(tmp)
			if err := writeFile(tmp, pems[i], 0o600); err != nil {
				return fmt.Errorf("write %s: %w", filepath.Base(tmp), err)
			}
			if err := os.Rename(tmp, path); err != nil {
				return fmt.Errorf("install %s: %w", name, err)
			}
		}
		return nil
	}
	return keys, install, nil
}

// Updates returns the node's update repository: the store, the audit log and the data
// dir's online keys; maxTarget bounds a published file (0: updates.DefaultMaxTargetSize).
func (n *Node) Updates(alog *audit.Log, maxTarget int64) (*updates.Service, error) {
	online, err := n.UpdateOnlineKeys()
	if err != nil {
		return nil, err
	}
	return updates.New(updates.Config{Store: n.Store, Audit: alog, Online: online, MaxTargetSize: maxTarget, Now: n.env.Now})
}
