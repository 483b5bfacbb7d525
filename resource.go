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

// DataKey is a patient's data-encryption key, wrapped by a key-encryption key.
type DataKey struct {
	PatientIndex []byte
	Wrapped      []byte
	CreatedAt    time.Time
}

// ResourceFilter selects stored resources. Zero fields do not filter.
type ResourceFilter struct {
	Type         string
	PatientIndex []byte
	CodeIndex    []byte
	// IdentifierIndex selects resources carrying this identifier blind index. It leads the
	// query when set (with PatientIndex, through the (type, patient, identifier) index).
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

// ResourceStore persists sealed resources and wrapped data keys.
type ResourceStore interface {
	// CreateResources durably stores resources in one transaction: either all or none are
	// stored, and on return without error every one of them survives a crash. Concurrent
	// callers may share one commit (group commit). The audit entries are appended in the same
	// transaction. Returns ECONFLICT if an id exists,
	// EUNAVAILABLE when the database is busy or full.
	CreateResources(ctx context.Context, rs []SealedResource, audit ...[]byte) error
	// Resource returns one resource. Returns ENOTFOUND.
	Resource(ctx context.Context, typ, id string) (SealedResource, error)
	// Resources calls fn for every resource matching f, in ascending id order, stopping at
	// the first error fn returns.
	Resources(ctx context.Context, f ResourceFilter, fn func(SealedResource) error) error

	// DataKey returns the wrapped data key for a patient. Returns ENOTFOUND.
	DataKey(ctx context.Context, patientIndex []byte) (DataKey, error)
	// PutDataKey stores a patient's wrapped data key if none exists yet and returns the one
	// that is stored afterwards (the caller's, or one a concurrent writer stored first).
	PutDataKey(ctx context.Context, k DataKey) (DataKey, error)
	// RewrapDataKeys replaces every wrapped data key with rewrap's result, in one transaction.
	// It returns how many keys changed.
	RewrapDataKeys(ctx context.Context, rewrap func(DataKey) ([]byte, bool, error)) (int, error)
}

// Store is everything Vitalgate persists. sqlite and postgres implement it; storetest is the
// conformance suite they both pass.
type Store interface {
	DeviceStore
	ClientStore
	ResourceStore
	NonceStore
	AuditStore
	OutboxStore
	NodeStore
	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
	// Close releases the store's resources after pending commits finish.
	Close() error
}
