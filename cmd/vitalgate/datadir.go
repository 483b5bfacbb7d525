package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/vitalgate/vitalgate"
	vgnode "github.com/vitalgate/vitalgate/node"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/vault"
)

// keysDir is the data dir's keyring directory.
const keysDir = vgnode.KeysDir

// node is an opened data dir (package node) under the names the command files use.
type node struct {
	*vgnode.Node
	dir   string
	ca    *pki.CA
	store vitalgate.Store
	vault *vault.Vault
}

func wrapNode(n *vgnode.Node) *node {
	return &node{Node: n, dir: n.Dir, ca: n.CA, store: n.Store, vault: n.Vault}
}

// env is the clock and environment the commands give a node.
func (m *Main) env() vgnode.Env { return vgnode.Env{Now: m.Now, Getenv: m.Getenv} }

// openDataDir opens an initialised data dir.
func (m *Main) openDataDir(ctx context.Context, dir string) (*node, error) {
	if err := checkDataDir(dir); err != nil {
		return nil, err
	}
	n, err := vgnode.Open(ctx, dir, m.env())
	if err != nil {
		return nil, err
	}
	return wrapNode(n), nil
}

// checkDataDir tells a directory that is not a data dir (a file, an empty or unrelated
// directory, one the caller may not read) from a data dir with a problem, so that the
// message names the right fix: `vitalgate init` for the first, never a chmod of a
// directory that was never a data dir.
func checkDataDir(dir string) error {
	if dir == "" {
		return nil // node.Open says --data is required
	}
	st, err := os.Stat(dir) // #nosec G703 -- the operator names the data dir; only its type is read
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // node.Open says it does not exist and how to create it
	case errors.Is(err, fs.ErrPermission):
		return notReadable(dir)
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s is not a Vitalgate data dir (it is a file): create one with `vitalgate init --data DIR` and pass that DIR", dir)
	}
	for _, name := range []string{vgnode.CACertFile, vgnode.KeysDir} {
		_, err := os.Stat(filepath.Join(dir, name)) // #nosec G703 -- a data dir file's existence, in the dir the operator named
		switch {
		case errors.Is(err, fs.ErrPermission):
			return notReadable(dir)
		case errors.Is(err, fs.ErrNotExist):
			if entries, err := os.ReadDir(dir); err == nil && len(entries) == 0 {
				return fmt.Errorf("%s is not a Vitalgate data dir (it is empty): create one with `vitalgate init --data %s`", dir, dir)
			}
			return fmt.Errorf("%s is not a Vitalgate data dir (it has no %s): create one with `vitalgate init --data DIR` (DIR new or empty) and pass that DIR", dir, name)
		case err != nil:
			return err
		}
	}
	return nil
}

// notReadable is the message for a data dir the caller may not read.
func notReadable(dir string) error {
	return fmt.Errorf("cannot read the data dir %s: permission denied. Run the command as the user that owns it "+
		"(`ls -ld %s` shows who; with deploy/vitalgate.service that is vitalgate: `sudo -u vitalgate vitalgate ...`)", dir, dir)
}

// idPattern is FHIR's id syntax; device, patient and client ids must follow it.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func checkID(kind, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%s id %q is not valid: use 1 to 64 letters, digits, '-' or '.'", kind, id)
	}
	return nil
}
