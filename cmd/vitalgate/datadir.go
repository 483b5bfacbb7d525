package main

import (
	"context"
	"fmt"
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
	n, err := vgnode.Open(ctx, dir, m.env())
	if err != nil {
		return nil, err
	}
	return wrapNode(n), nil
}

// idPattern is FHIR's id syntax; device, patient and client ids must follow it.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func checkID(kind, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%s id %q is not valid: use 1 to 64 letters, digits, '-' or '.'", kind, id)
	}
	return nil
}
