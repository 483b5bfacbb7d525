package registry

import (
	"context"

	"github.com/vitalgate/vitalgate"
)

// ResourceReader reads one stored resource by type and id (vitalgate.ResourceStore has it).
type ResourceReader interface {
	Resource(ctx context.Context, typ, id string) (vitalgate.SealedResource, error)
}

// PatientStored reports whether a Patient resource with id is stored, so that an operator
// who assigns a device to a mistyped patient id hears of it. It reads only whether the row
// exists, never the Patient's contents.
func PatientStored(ctx context.Context, rs ResourceReader, id string) (bool, error) {
	_, err := rs.Resource(ctx, "Patient", id)
	switch vitalgate.ErrorCode(err) {
	case "":
		return true, nil
	case vitalgate.ENOTFOUND:
		return false, nil
	}
	return false, err
}
