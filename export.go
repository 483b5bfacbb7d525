package vitalgate

import (
	"context"
	"time"
)

// ExportStatus is where a bulk export job (FHIR Bulk Data Access, $export) stands.
type ExportStatus string

// Export job states. A job is queued when kicked off, running while a node holds its lease,
// and then done, failed or cancelled; a cancelled job's files are deleted at once, every
// job's when it expires.
const (
	ExportQueued    ExportStatus = "queued"
	ExportRunning   ExportStatus = "running"
	ExportDone      ExportStatus = "done"
	ExportFailed    ExportStatus = "failed"
	ExportCancelled ExportStatus = "cancelled"
)

// ExportJob is one bulk export: what a client asked for, and how far it got.
type ExportJob struct {
	ID     string
	Client string // the client that kicked it off: the only one that may poll it or read its files
	Site   string // the site the client acted within
	// Request is the kick-off URL as the client sent it (the manifest's "request").
	Request string
	// Group is the Group exported ("" for Patient/$export: every patient the client may
	// see).
	Group   string
	Types   []string  // resource types to export, in file order
	Since   time.Time // only resources updated at or after it; zero for all
	Filters []ExportFilter
	Status  ExportStatus
	// Owner names the run that holds the job while its lease (LeaseUntil) lasts: the node and
	// a fresh token of each claim. A job whose lease ran out is taken over by another run,
	// which starts it again; the chunks of the run that finishes it are its files.
	Owner      string
	LeaseUntil time.Time
	// Progress says in a few words how far a running job is ("Observation: 12000").
	Progress string
	Error    string // why a job failed, in words for the client (no patient data)
	// WrappedKey is the job's data key, wrapped by the deployment's key-encryption key: every
	// chunk of its files is sealed under it.
	WrappedKey []byte
	Files      []ExportFile // the files written, in order (set when done)
	CreatedAt  time.Time
	UpdatedAt  time.Time
	DoneAt     time.Time
	ExpiresAt  time.Time // the job and its files are deleted after it
}

// ExportFilter is one _typeFilter of a job: resources of Type that carry Code (a token,
// "system|code" or a bare code; empty for any) and whose effective time lies in [From, To)
// (zero for open). A resource of a type with filters is exported when any filter of its
// type keeps it.
type ExportFilter struct {
	Type     string    `json:"type"`
	Code     string    `json:"code,omitempty"`
	From     time.Time `json:"from,omitzero"`
	To       time.Time `json:"to,omitzero"`
	Category string    `json:"category,omitempty"`
}

// ExportFile is one NDJSON output file of a job: the resources of one type.
type ExportFile struct {
	Seq   int    `json:"seq"`  // the file's number in the job, from 0
	Type  string `json:"type"` // FHIR resource type
	Count int    `json:"count"`
}

// ExportChunkSize is the most plaintext bytes of an export file sealed in one chunk.
const ExportChunkSize = 1 << 20

// CheckExportJob reports whether a new job can be stored: EINVALID without an id, a client,
// a type or a data key.
func CheckExportJob(j ExportJob) error {
	switch {
	case j.ID == "" || j.Client == "":
		return Errorf(EINVALID, "an export job needs an id and a client")
	case len(j.Types) == 0:
		return Errorf(EINVALID, "an export job needs at least one resource type")
	case len(j.WrappedKey) == 0:
		return Errorf(EINVALID, "an export job needs a data key")
	}
	return nil
}

// ExportStore keeps bulk export jobs and their sealed file chunks, so that any node of a
// deployment can run a job, answer its status and serve its files, and a job survives a
// restart.
type ExportStore interface {
	// CreateExportJob stores a new queued job and appends the audit entries, in one
	// transaction. ECONFLICT if its id exists.
	CreateExportJob(ctx context.Context, j ExportJob, audit ...[]byte) error
	// ExportJob returns a job. ENOTFOUND.
	ExportJob(ctx context.Context, id string) (ExportJob, error)
	// ClaimExportJob gives owner the oldest job that is queued, or running with a lease
	// that ran out before now, with a lease until leaseUntil: of runs claiming at once, one
	// gets each job. ENOTFOUND when there is none.
	ClaimExportJob(ctx context.Context, owner string, now, leaseUntil time.Time) (ExportJob, error)
	// RenewExportLease extends owner's lease of a running job and records its progress.
	// ECONFLICT when owner holds it no longer (another run took it over, or it was
	// cancelled): the owner stops.
	RenewExportLease(ctx context.Context, id, owner string, leaseUntil time.Time, progress string) error
	// PutExportChunk stores chunk seq of file file, written by owner. ECONFLICT when owner
	// holds the job no longer.
	PutExportChunk(ctx context.Context, id, owner string, file, seq int, sealed []byte) error
	// FinishExportJob ends the running job j.ID that j.Owner holds: done with j.Files, or
	// failed with j.Error, at j.DoneAt, kept until j.ExpiresAt; with the audit entries, in
	// one transaction. The chunks of other runs are deleted. ECONFLICT when j.Owner holds it
	// no longer.
	FinishExportJob(ctx context.Context, j ExportJob, audit ...[]byte) error
	// CancelExportJob marks a queued, running or finished job cancelled and deletes its
	// chunks, with the audit entries, in one transaction. ENOTFOUND; ECONFLICT when it was
	// cancelled already.
	CancelExportJob(ctx context.Context, id string, at time.Time, audit ...[]byte) error
	// ExportChunks calls fn with the sealed chunks of file of a done job, in order, as the
	// run that finished it wrote them.
	ExportChunks(ctx context.Context, id string, file int, fn func(seq int, sealed []byte) error) error
	// DeleteExpiredExports deletes the jobs (and chunks) that expired before now and returns
	// their ids.
	DeleteExpiredExports(ctx context.Context, now time.Time) ([]string, error)
}
