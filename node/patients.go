package node

import (
	"context"
	"errors"

	"github.com/vitalgate/vitalgate"
)

var errFound = errors.New("found")

// ResolvePatient finds the Patient id whose identifier is key ("system|value") through its
// blind index, for HL7 PID-3 identifiers. Errors: ENOTFOUND when no Patient has it.
func (n *Node) ResolvePatient(ctx context.Context, key string) (string, error) {
	var id string
	err := n.Store.Resources(ctx, vitalgate.ResourceFilter{Type: "Patient", CodeIndex: n.Vault.IdentifierIndex(key), Limit: 1},
		func(r vitalgate.SealedResource) error { id = r.ID; return errFound })
	if err != nil && !errors.Is(err, errFound) {
		return "", err
	}
	if id == "" {
		return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "no Patient has this identifier")
	}
	return id, nil
}
