package vitalgate

import (
	"context"
	"time"
)

// SealedResource is a stored FHIR resource: the JSON body is sealed (AES-256-GCM under the
// patient's data key), and the only searchable columns are keyed blind indexes and times.
type SealedResource struct {
	Type         string // FHIR resource type, e.g. "Observation"
	ID           string // server-assigned id
	Version      int    // meta.versionId
	Site         string // the site the resource (its patient) belongs to
	PatientIndex []byte // blind index of the patient the resource belongs to
	// CodeIndexes are the resource's token blind indexes: for an Observation "system|code"
	// and the bare code of each coding of its code; for a Patient "system|value" of each
	// identifier.
	CodeIndexes [][]byte
	// IdentifierIndexes are the blind indexes ("system|value") of the resource's business
	// identifiers, stored in an index on (type, patient, identifier) so that finding a
	// resource by identifier costs the same whatever the patient's history. For a Patient
	// they are unique: a second Patient with one of them is refused with ECONFLICT.
	IdentifierIndexes [][]byte
	Effective         time.Time
	LastUpdated       time.Time
	Body              []byte // sealed JSON
}

// IdentifierConflict names a Patient that shares an identifier with an older Patient in a
// database written before Patient identifiers were unique: the older Patient (KeptID) keeps
// the identifier, and Patient ID is no longer found by it (it stays readable by id).
type IdentifierConflict struct {
	ID     string
	KeptID string
}

// DataKey is a patient's data-encryption key, wrapped by a key-encryption key.
type DataKey struct {
	// Site is the site of the patient: its key-encryption key wraps the key when the site
	// has its own (Site.OwnKeys).
	Site         string
	PatientIndex []byte
	Wrapped      []byte
	CreatedAt    time.Time
}

// ResourceFilter selects stored resources. Zero fields do not filter.
type ResourceFilter struct {
	// Site selects the resources of one site. Every search on behalf of a principal sets
	// it; only whole-deployment operations (export, key rotation) leave it empty. A search of
	// Patients by identifier is always within one site (identifiers are unique per site):
	// there an empty Site is the default site (StoredSite).
	Site         string
	Type         string
	PatientIndex []byte
	CodeIndex    []byte
	// IdentifierIndex selects resources carrying this identifier blind index. It leads the
	// query when set (with PatientIndex, through the (type, patient, identifier) index). It
	// needs Type, and PatientIndex unless Type is "Patient" (Patient identifiers are unique),
	// and cannot be combined with ByEffective.
	IdentifierIndex []byte
	Since           time.Time // LastUpdated >= Since
	After           string    // resume after this id (paging), in ascending order
	Limit           int

	// ByEffective orders by (Effective, ID) instead of ID, descending when Desc is set; paging
	// then resumes strictly after (AfterEffective, After) in that order.
	ByEffective    bool
	Desc           bool
	AfterEffective time.Time
	// EffectiveFrom and EffectiveTo bound Effective to [From, To); zero means open.
	EffectiveFrom time.Time
	EffectiveTo   time.Time
}

// Validate reports whether the stores can run f: EINVALID for a search by date without a
// patient and a type, and for an identifier search without a type, without a patient (except
// for Patients) or by date.
func (f ResourceFilter) Validate() error {
	switch {
	case f.ByEffective && (len(f.PatientIndex) == 0 || f.Type == ""):
		return Errorf(EINVALID, "a search by date needs a patient and a resource type")
	case len(f.IdentifierIndex) > 0 && f.ByEffective:
		return Errorf(EINVALID, "a search by identifier cannot be ordered by date")
	case len(f.IdentifierIndex) > 0 && f.Type == "":
		return Errorf(EINVALID, "a search by identifier needs a resource type")
	case len(f.IdentifierIndex) > 0 && f.Type != "Patient" && len(f.PatientIndex) == 0:
		return Errorf(EINVALID, "a search by identifier needs a patient, except for Patients")
	}
	return nil
}

// ResourceLead names the filter that leads a stores' Resources query: the index the query
// walks. Both stores choose it with ResourceFilter.Lead, so that they cannot disagree.
type ResourceLead int

// The leads, most selective first.
const (
	LeadAll                  ResourceLead = iota // every resource (export), sorted by id
	LeadType                                     // the resources of one type, on the primary key
	LeadCode                                     // a code index
	LeadPatient                                  // a patient's resources in id order
	LeadEffectiveAsc                             // a patient's resources of one type by date
	LeadEffectiveDesc                            // the same, newest first
	LeadPatientIdentifier                        // a patient's resources with an identifier
	LeadPatientsByIdentifier                     // the Patient with an identifier
)

// Lead returns the filter that leads the query of a valid f: an identifier first (its cost
// must not depend on the patient's history), then the date order, the patient, the code and
// the type.
func (f ResourceFilter) Lead() ResourceLead {
	switch {
	case len(f.IdentifierIndex) > 0 && len(f.PatientIndex) > 0:
		return LeadPatientIdentifier
	case len(f.IdentifierIndex) > 0:
		return LeadPatientsByIdentifier
	case f.ByEffective && f.Desc:
		return LeadEffectiveDesc
	case f.ByEffective:
		return LeadEffectiveAsc
	case len(f.PatientIndex) > 0:
		return LeadPatient
	case len(f.CodeIndex) > 0:
		return LeadCode
	case f.Type != "":
		return LeadType
	}
	return LeadAll
}

// CheckWrite reports whether CreateResources may store rs with the audit entries: EINVALID
// for a resource without type, id or body or with a site that is not one (an empty site is
// the default site's: the stores write it as StoredSite), and for an empty audit entry. Both stores call
// it, so that they refuse the same input with the same error.
func CheckWrite(rs []SealedResource, audit [][]byte) error {
	for _, r := range rs {
		switch {
		case r.Type == "":
			return FieldErrorf(EINVALID, "resourceType", "resource type is empty")
		case r.ID == "":
			return FieldErrorf(EINVALID, "id", "resource id is empty")
		case r.Site == AllSites || r.Site != "" && CheckSiteID(r.Site) != nil:
			return FieldErrorf(EINVALID, "meta.tag", "resource has no valid site")
		case len(r.Body) == 0:
			return Errorf(EINVALID, "resource body is empty")
		}
	}
	return CheckAuditEntries(audit)
}

// CheckAuditEntries reports whether entries may be appended to the audit log: EINVALID for
// an empty entry (an entry is a canonical encoding, never empty). The stores' write methods
// call it before writing anything, so that an unusable entry fails the write rather than
// leaving it unaudited.
func CheckAuditEntries(entries [][]byte) error {
	for _, e := range entries {
		if len(e) == 0 {
			return Errorf(EINVALID, "audit entry is empty")
		}
	}
	return nil
}

// CheckDataKey reports whether PutDataKey may store k: EINVALID for a key without patient
// index, with a site that is not one (empty: StoredSite) and for an empty wrapped key. Both stores call it, so that they refuse the same key
// with the same error.
func CheckDataKey(k DataKey) error {
	if len(k.PatientIndex) == 0 {
		return Errorf(EINVALID, "data key has no patient index")
	}
	if k.Site == AllSites || k.Site != "" && CheckSiteID(k.Site) != nil {
		return Errorf(EINVALID, "data key has no valid site")
	}
	if len(k.Wrapped) == 0 {
		return Errorf(EINVALID, "data key is empty")
	}
	return nil
}

// ResourceStore persists sealed resources and wrapped data keys.
type ResourceStore interface {
	// CreateResources durably stores resources in one transaction: either all or none are
	// stored, and on return without error every one of them survives a crash. Concurrent
	// callers may share one commit (group commit). The audit entries are appended in the same
	// transaction. A resource whose Version is above 1 is a new version: it replaces the
	// stored resource of the same type and id if that is Version-1 (its code and identifier
	// indexes with it), and is stored as it is if none is stored. Returns ECONFLICT if an id
	// exists (for a new version: with a version other than Version-1, a concurrent writer
	// came first) or a Patient identifier index belongs to another Patient, EINVALID for what
	// CheckWrite refuses, EUNAVAILABLE when the database is busy or full.
	CreateResources(ctx context.Context, rs []SealedResource, audit ...[]byte) error
	// Resource returns one resource. Returns ENOTFOUND.
	Resource(ctx context.Context, typ, id string) (SealedResource, error)
	// Resources calls fn for every resource matching f, in ascending id order, stopping at
	// the first error fn returns. Returns EINVALID for a filter that Validate refuses.
	Resources(ctx context.Context, f ResourceFilter, fn func(SealedResource) error) error

	// DataKey returns the wrapped data key for a patient. Returns ENOTFOUND.
	DataKey(ctx context.Context, patientIndex []byte) (DataKey, error)
	// PutDataKey stores a patient's wrapped data key if none exists yet and returns the one
	// that is stored afterwards (the caller's, or one a concurrent writer stored first).
	// Returns EINVALID for what CheckDataKey refuses.
	PutDataKey(ctx context.Context, k DataKey) (DataKey, error)
	// RewrapDataKeys replaces every wrapped data key with rewrap's result, in one transaction.
	// It returns how many keys changed.
	RewrapDataKeys(ctx context.Context, rewrap func(DataKey) ([]byte, bool, error)) (int, error)
}

// Store is everything Vitalgate persists. sqlite and postgres implement it; storetest is the
// conformance suite they both pass.
type Store interface {
	SiteStore
	ModelStore
	DeviceStore
	ClientStore
	ResourceStore
	NonceStore
	AuditStore
	OutboxStore
	NodeStore
	NodeConfigStore
	UpdateStore
	ErasureStore
	KEKRetirementStore
	CareUnitStore
	UserStore
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	// Close releases the store's resources after pending commits finish.
	Close() error
}
