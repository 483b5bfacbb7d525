package vitalgate

import (
	"context"
	"time"
)

// ErasureRequest is one admin's request to erase a patient (crypto-shredding): once another
// admin approves it, the patient's wrapped data key, resources and blind-index rows are
// deleted. It names the patient only by its blind index.
//
// A request with no PatientIndex erases the whole site (a hospital that leaves the
// deployment): every patient's data key and data, its devices' certificates and its clients.
type ErasureRequest struct {
	ID           string
	Site         string
	PatientIndex []byte // empty: the whole site
	Reason       string
	RequestedBy  string
	RequestedAt  time.Time
	ApprovedBy   string    // empty until approved
	ApprovedAt   time.Time // zero until approved
}

// LegalHold blocks the erasure of a patient while it is in place.
type LegalHold struct {
	Site         string
	PatientIndex []byte
	Reason       string
	PlacedBy     string
	PlacedAt     time.Time
}

// Erased says what an approved erasure deleted.
type Erased struct {
	DataKeys    int
	Resources   int
	Assignments int
	Devices     int // a site erasure: devices revoked
	Clients     int // a site erasure: clients disabled
	// PatientIndexes are, for a site erasure, the patients whose data keys were deleted
	// (for the tombstones that keep them erased through a restore).
	PatientIndexes [][]byte
}

// SiteErasure reports whether r erases a whole site rather than one patient.
func (r ErasureRequest) SiteErasure() bool { return len(r.PatientIndex) == 0 }

// CheckApproval refuses the approval of r by approvedBy as an erasure of a site (site) or
// of one patient: ECONFLICT when approved already, EFORBIDDEN by its requester (two people),
// EINVALID for a request of the other kind. Both stores call it inside the approving
// transaction, on the request as it reads there.
func (r ErasureRequest) CheckApproval(approvedBy string, site bool) error {
	switch {
	case r.ApprovedBy != "":
		return Errorf(ECONFLICT, "erasure request %q is approved already", r.ID)
	case r.RequestedBy == approvedBy:
		return Errorf(EFORBIDDEN, "an erasure needs two people: its requester cannot approve it")
	case r.SiteErasure() && !site:
		return Errorf(EINVALID, "erasure request %q erases a whole site, not one patient", r.ID)
	case !r.SiteErasure() && site:
		return Errorf(EINVALID, "erasure request %q erases one patient, not a site", r.ID)
	}
	return nil
}

// ErasureStore persists erasure requests and legal holds and performs the erasure.
type ErasureStore interface {
	// CreateErasureRequest stores a new, unapproved request. ECONFLICT if the id exists.
	CreateErasureRequest(ctx context.Context, r ErasureRequest) error
	// ErasureRequest returns one request. ENOTFOUND.
	ErasureRequest(ctx context.Context, id string) (ErasureRequest, error)
	// PutLegalHold places a hold on a patient. ECONFLICT if one is in place.
	PutLegalHold(ctx context.Context, h LegalHold) error
	// ReleaseLegalHold removes the hold on a patient. ENOTFOUND if none.
	ReleaseLegalHold(ctx context.Context, site string, patientIndex []byte) error
	// LegalHold returns the hold on a patient. ENOTFOUND.
	LegalHold(ctx context.Context, site string, patientIndex []byte) (LegalHold, error)
	// ErasePatient approves request id by approvedBy and, in the same transaction, deletes
	// the patient's wrapped data key, its resources with their code and identifier index
	// rows, its device assignments and care-team rows, and appends the audit entries; audit
	// entries already written stay. Errors: ENOTFOUND for an unknown request, ECONFLICT if
	// it is approved already or a legal hold is in place, EFORBIDDEN if approvedBy is the
	// requester.
	ErasePatient(ctx context.Context, id, approvedBy string, at time.Time, audit ...[]byte) (Erased, error)
	// EraseSite approves site-erasure request id by approvedBy and, in the same transaction,
	// deletes every wrapped data key of the site, its resources with their index rows, its
	// devices' assignments and care-team rows; revokes its devices and their certificates
	// (and voids their enrollment secrets), disables its clients, marks the site erased and
	// appends the audit entries. Errors as ErasePatient; EINVALID for a patient's request;
	// ECONFLICT when a legal hold is in place on any patient of the site.
	EraseSite(ctx context.Context, id, approvedBy string, at time.Time, audit ...[]byte) (Erased, error)
}

// RetiredKEK names a key-encryption key replaced after an erasure: once retired, no data key
// may be stored wrapped under it, and every node stops using it and deletes its file.
type RetiredKEK struct {
	Keyring   string    // the site whose own KEK it is, or "" for the deployment's keyring
	KEK       string    // its id, e.g. "kek-1"
	RetiredAt time.Time // when it was retired
}

// KEKRetirementStore fences key-encryption keys that are being destroyed, so that a data
// key sealed by a node that still holds an old KEK cannot be stored under it while (or after)
// the other keys are rewrapped.
type KEKRetirementStore interface {
	// PutDataKeyUnder is PutDataKey for k wrapped under KEK kek of keyring ("" for the
	// deployment's, else the site id). ECONFLICT, with nothing stored, when that KEK is
	// retired; it is serialized with RetireKEKs, so a key it stores is seen by a rewrap that
	// starts after RetireKEKs returns.
	PutDataKeyUnder(ctx context.Context, k DataKey, keyring, kek string) (DataKey, error)
	// RetireKEKs records the KEKs ids of keyring as retired (again is no error). It waits for
	// PutDataKeyUnder calls in progress to finish.
	RetireKEKs(ctx context.Context, keyring string, ids []string, at time.Time) error
	// RetiredKEKs returns every retired KEK, by keyring and id.
	RetiredKEKs(ctx context.Context) ([]RetiredKEK, error)
}
