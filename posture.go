package vitalgate

import (
	"context"
	"time"
)

// PostureDoc is one document the vulnerability posture capability (package posture) keeps:
// an SBOM of a device model's version, an OSV advisory, a CISA KEV entry or a VEX
// statement. Kind says which; Key is unique within the kind; Data is the document as the
// capability encodes it (JSON). The stores keep the documents and never read inside them.
type PostureDoc struct {
	Kind      string // "sbom", "advisory", "kev" or "vex" (package posture names them)
	Key       string // unique within Kind, at most MaxPostureKeyBytes bytes
	Data      []byte
	UpdatedAt time.Time
}

// MaxPostureKeyBytes bounds a posture document's key.
const MaxPostureKeyBytes = 512

// PostureStore persists the posture documents. Trailing audit entries are appended in the
// same transaction as the write.
type PostureStore interface {
	// PutPostureDocs inserts the documents, replacing any of the same kind and key, in one
	// transaction. EINVALID for what CheckPostureDoc refuses.
	PutPostureDocs(ctx context.Context, docs []PostureDoc, audit ...[]byte) error
	// PostureDocs returns every document of kind, ordered by key.
	PostureDocs(ctx context.Context, kind string) ([]PostureDoc, error)
}

// CheckPostureDoc reports whether a store may keep d: EINVALID for an empty kind, key or
// data, or a key over MaxPostureKeyBytes. Both stores call it.
func CheckPostureDoc(d PostureDoc) error {
	switch {
	case d.Kind == "" || d.Key == "" || len(d.Data) == 0:
		return Errorf(EINVALID, "a posture document needs a kind, a key and its data")
	case len(d.Key) > MaxPostureKeyBytes:
		return FieldErrorf(EINVALID, "key", "a posture document's key is at most %d bytes", MaxPostureKeyBytes)
	}
	return nil
}
