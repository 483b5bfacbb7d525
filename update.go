package vitalgate

import (
	"context"
	"errors"
	"io"
	"time"
)

// UpdateChunkSize is the most bytes of a target file that a store keeps in one row: target
// files are written and read chunk by chunk, so that no whole image is ever held in memory.
const UpdateChunkSize = 1 << 20

// EachUpdateChunk reads content to its end in chunks of at most UpdateChunkSize bytes and
// calls fn with each chunk's sequence number (from 0) and bytes, which fn must not keep: the
// one way both stores split a target file into rows.
func EachUpdateChunk(content io.Reader, fn func(seq int, chunk []byte) error) error {
	buf := make([]byte, UpdateChunkSize)
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(content, buf)
		if n > 0 {
			if err := fn(seq, buf[:n]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// CopyUpdateChunks writes a target file's chunks to w in sequence order, reading chunk seq
// with next until next returns io.EOF, and returns the bytes written: the one way both stores
// stream a target file out of its rows.
func CopyUpdateChunks(w io.Writer, next func(seq int) ([]byte, error)) (int64, error) {
	var total int64
	for seq := 0; ; seq++ {
		chunk, err := next(seq)
		if errors.Is(err, io.EOF) {
			return total, nil
		} else if err != nil {
			return total, err
		}
		n, err := w.Write(chunk)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// UpdateMetadata is one signed version of a metadata file of the update repository (The
// Update Framework): the top-level roles root, targets, snapshot and timestamp, and one
// delegated targets role per device model, named as the model.
type UpdateMetadata struct {
	Role      string // "root", "targets", "snapshot", "timestamp" or a device model id
	Version   int64  // from 1
	Data      []byte // the signed metadata (JSON), served as it is
	Expires   time.Time
	CreatedAt time.Time
}

// UpdateRelease is one software release of a device model: its target file and whether
// the offline keys have approved it (Live: the model's role that lists it is signed by its
// threshold of keys and published).
type UpdateRelease struct {
	Model   string
	Version string
	Target  string // the TUF target path, MODEL/VERSION/FILENAME
	Length  int64  // bytes of the target file
	SHA256  []byte // its SHA-256
	SBOM    []byte // the release's SBOM (CycloneDX JSON) when one was given
	Live    bool
	Pending []byte // until live: the metadata that will approve it, with the signatures so far (package updates)
	Signed  int    // valid signatures collected of the model role's threshold
	Needed  int    // the model role's threshold
	By      string // who published it
	Created time.Time
	LiveAt  time.Time // zero until live
}

// UpdateStore persists the update repository: metadata versions, releases and their target
// files (in chunks of at most UpdateChunkSize bytes). Trailing audit entries are appended
// in the same transaction as the write.
type UpdateStore interface {
	// CreateUpdateRelease stores r and its target file, read from content to its end, and
	// the metadata ms (those that make r live, or none), in one transaction: an error from
	// content (package updates returns one when the bytes differ from r's length and hash)
	// leaves nothing behind. ECONFLICT if the model has a release of r's version or any of
	// ms exists (role and version); EINVALID for what CheckUpdateRelease refuses.
	CreateUpdateRelease(ctx context.Context, r UpdateRelease, content io.Reader, ms []UpdateMetadata, audit ...[]byte) error
	// SignUpdateRelease replaces the Pending, Signed, Live and LiveAt of the release of
	// r.Model and r.Version that is not live yet, and stores ms, in one transaction.
	// ENOTFOUND if there is no such release, ECONFLICT if it is live already or any of ms
	// exists.
	SignUpdateRelease(ctx context.Context, r UpdateRelease, ms []UpdateMetadata, audit ...[]byte) error
	// PutUpdateMetadata stores metadata versions in one transaction. ECONFLICT if any exists
	// (another node refreshed first).
	PutUpdateMetadata(ctx context.Context, ms []UpdateMetadata, audit ...[]byte) error
	// UpdateMetadata returns version of role's metadata, the highest version for 0.
	// ENOTFOUND.
	UpdateMetadata(ctx context.Context, role string, version int64) (UpdateMetadata, error)
	// UpdateRelease returns a release. ENOTFOUND.
	UpdateRelease(ctx context.Context, model, version string) (UpdateRelease, error)
	// UpdateReleases returns the releases of model (of every model for ""), ordered by
	// model, then creation.
	UpdateReleases(ctx context.Context, model string) ([]UpdateRelease, error)
	// WriteUpdateTarget writes the target file of a release to w, one chunk at a time, and
	// returns the bytes written. ENOTFOUND.
	WriteUpdateTarget(ctx context.Context, model, version string, w io.Writer) (int64, error)
}

// CheckUpdateRelease reports whether a store may keep r: EINVALID for an empty model,
// version or target, a negative length or a SHA-256 that is not 32 bytes. Both stores call it.
func CheckUpdateRelease(r UpdateRelease) error {
	switch {
	case r.Model == "" || r.Version == "" || r.Target == "":
		return Errorf(EINVALID, "an update release needs a model, a version and a target path")
	case r.Length < 0 || len(r.SHA256) != 32:
		return Errorf(EINVALID, "an update release needs its length and SHA-256")
	}
	return nil
}

// CheckUpdateMetadata reports whether a store may keep ms: EINVALID for an empty role or
// data, or a version below 1.
func CheckUpdateMetadata(ms []UpdateMetadata) error {
	for _, m := range ms {
		if m.Role == "" || len(m.Data) == 0 || m.Version < 1 {
			return Errorf(EINVALID, "update metadata needs a role, a version from 1 and its data")
		}
	}
	return nil
}
