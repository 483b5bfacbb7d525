package main

import (
	"context"
	"errors"

	"github.com/vitalgate/vitalgate"
)

var errFound = errors.New("found")

// resolvePatient finds the Patient id whose identifier is key ("system|value") through its
// blind index, for HL7 PID-3 identifiers.
func resolvePatient(ctx context.Context, n *node, key string) (string, error) {
	var id string
	err := n.store.Resources(ctx, vitalgate.ResourceFilter{Type: "Patient", IdentifierIndex: n.vault.IdentifierIndex(key), Limit: 1},
		func(r vitalgate.SealedResource) error { id = r.ID; return errFound })
	if err != nil && err != errFound {
		return "", err
	}
	if id == "" {
		return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "no Patient has this identifier")
	}
	return id, nil
}
