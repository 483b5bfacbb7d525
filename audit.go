package vitalgate

import (
	"context"
	"crypto/sha256"
	"math"
	"strings"
	"time"
)

// AuditRecord is one stored entry of the tamper-evident audit log.
type AuditRecord struct {
	// Index is the entry's position in the log, from 0, assigned by the store at commit:
	// indexes are dense (no gaps) and follow commit order, whatever the number of writers.
	Index uint64
	// Data is the entry's canonical encoding (package audit). It carries no clinical values.
	Data []byte
	// Hash is the entry's RFC 6962 leaf hash as stored when it was appended (AuditLeafHash
	// of Data), or nil if the store keeps none. Verification recomputes it from Data and
	// names the first entry whose stored hash no longer matches.
	Hash []byte
}

// Archived reports whether the entry's data was moved to an archive segment (`vitalgate audit
// archive`): the store then keeps only its leaf hash (Hash), so that the tree, its root and
// the proofs of the other entries stay as they were, and Data is empty. A live entry is never
// empty (CheckAuditEntries).
func (r AuditRecord) Archived() bool { return len(r.Data) == 0 }

// AuditSegment records an archive segment: the entries From <= Index < To, whose data was
// moved out of the live log into a sealed file (its SHA-256 in File) that must be kept until
// KeepUntil (the retention). Segments cover a prefix of the log, one after the other: a
// segment starts where the previous one ended, and ends at a signed checkpoint.
type AuditSegment struct {
	ID        string
	From, To  uint64
	Before    time.Time // the archive's cutoff: every archived entry is older
	LastTime  time.Time // the time of the newest archived entry
	KeepUntil time.Time // LastTime plus the retention: the file must be kept until then
	File      string    // hex SHA-256 of the segment file
	CreatedAt time.Time
}

// CheckAuditSegment reports whether ArchiveAudit may record s over hashes (the leaf hashes of
// entries s.From to s.To): EINVALID for an id that is empty or longer than 128 bytes, an
// empty or out-of-range span, a file digest that is not 64 hex digits, a number of hashes
// other than the span's, or a zero Before, LastTime or KeepUntil. Both stores call it.
func CheckAuditSegment(s AuditSegment, hashes [][32]byte) error {
	switch {
	case s.ID == "" || len(s.ID) > 128:
		return Errorf(EINVALID, "audit segment id must be 1 to 128 bytes")
	case s.From >= s.To || s.To > math.MaxInt64:
		return Errorf(EINVALID, "audit segment must span at least one entry")
	case uint64(len(hashes)) != s.To-s.From:
		return Errorf(EINVALID, "audit segment of %d entries given %d leaf hashes", s.To-s.From, len(hashes))
	case len(s.File) != 64 || strings.Trim(s.File, "0123456789abcdef") != "":
		return Errorf(EINVALID, "audit segment file digest must be 64 lowercase hex digits")
	case s.Before.IsZero() || s.LastTime.IsZero() || s.KeepUntil.IsZero():
		return Errorf(EINVALID, "audit segment needs its cutoff, the time of its newest entry and its keep-until date")
	}
	return nil
}

// AuditArchiver moves old entries of the audit log out of the store (vitalgate audit archive).
type AuditArchiver interface {
	// ArchiveAudit records segment s and, in the same transaction as the audit entries,
	// removes the data of entries s.From to s.To, keeping their leaf hashes (hashes, which
	// must equal the stored ones where stored) and dropping them from the search index.
	// s.From must be where the archived prefix of the log ends (0, or the last segment's
	// To) and s.To at most the log's size. Returns EINVALID for what CheckAuditSegment
	// refuses, ECONFLICT if s.From is not the end of the archived prefix, a segment with
	// that id exists, s.To is beyond the log, or a hash differs from the stored one.
	ArchiveAudit(ctx context.Context, s AuditSegment, hashes [][32]byte, audit ...[]byte) error
	// AuditSegments returns every recorded segment in log order.
	AuditSegments(ctx context.Context) ([]AuditSegment, error)
}

// AuditLeafHash is the RFC 6962 leaf hash of an audit entry: SHA-256(0x00 || data).
func AuditLeafHash(data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	return [32]byte(h.Sum(nil))
}

// AuditCheckpoint is a signed checkpoint of the audit log (C2SP signed-note format).
type AuditCheckpoint struct {
	Size      uint64 // number of entries the checkpoint commits to
	Note      []byte // the signed note
	CreatedAt time.Time
}

// CheckAuditCheckpoint reports whether AddAuditCheckpoint may store c: EINVALID for an empty
// note and for a size beyond what a store's log can hold (math.MaxInt64: indexes are stored
// as signed 64-bit integers). Both stores call it, so that they refuse the same checkpoint
// with the same error.
func CheckAuditCheckpoint(c AuditCheckpoint) error {
	if len(c.Note) == 0 {
		return Errorf(EINVALID, "audit checkpoint note is empty")
	}
	if c.Size > math.MaxInt64 {
		return Errorf(EINVALID, "audit checkpoint size out of range")
	}
	return nil
}

// AuditRange returns the part of from <= Index < to (an AuditEntries range) that a store can
// hold, as the signed 64-bit integers the stores keep indexes in: to is cut to math.MaxInt64,
// since nothing can exist beyond it (so that a to of math.MaxUint64 means "to the end"), and
// ok is false when nothing is left.
func AuditRange(from, to uint64) (lo, hi int64, ok bool) {
	to = min(to, math.MaxInt64)
	if from >= to {
		return 0, 0, false
	}
	return int64(from), int64(to), true // #nosec G115 -- from < to <= math.MaxInt64, just above
}

// AuditStore persists the audit log. Entries are appended by the store's other write
// methods, in the same transaction as the write they describe (their trailing audit
// arguments), or alone with AppendAudit.
type AuditStore interface {
	// AppendAudit appends entries in one transaction and returns the index of the first.
	// Returns EUNAVAILABLE when the store is busy or full.
	AppendAudit(ctx context.Context, entries ...[]byte) (uint64, error)
	// AuditSize returns the number of entries in the log.
	AuditSize(ctx context.Context) (uint64, error)
	// AuditEntries calls fn for the entries with from <= Index < to, in index order,
	// stopping at the first error fn returns. An archived entry comes with its Hash and no
	// Data (AuditRecord.Archived).
	AuditEntries(ctx context.Context, from, to uint64, fn func(AuditRecord) error) error
	// AddAuditCheckpoint stores a signed checkpoint. A checkpoint for a size that has one
	// already is ignored (several nodes may sign the same size). Returns EINVALID for what
	// CheckAuditCheckpoint refuses.
	AddAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// AuditCheckpoints returns every stored checkpoint in ascending size order.
	AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)
	// AuditSearch calls fn for the entries that match q, newest first, at most q.Limit of
	// them, through an index the store keeps with every entry (written in the transaction
	// that appends it), so that the cost follows the matches, not the size of the log. It
	// stops at the first error fn returns and returns it unchanged. Returns EINVALID for a
	// Limit outside 1..MaxAuditSearch.
	AuditSearch(ctx context.Context, q AuditQuery, fn func(AuditRecord) error) error
	AuditArchiver
}

// MaxAuditSearch is the most entries one AuditSearch returns.
const MaxAuditSearch = 1000

// AuditQuery selects audit entries by the members of their canonical encoding (package
// audit) that the stores index: every set field must match; the zero value of a field
// matches anything. Entries that are not JSON objects beginning with the "time" member are
// not indexed and never match.
type AuditQuery struct {
	PatientIndex string // the entry's patientIndex (hex blind index)
	AgentID      string // the entry's agentId
	Action       string // the entry's action: C, R, U, D or E
	Outcome      string // the entry's outcome: 0, 4, 8 or 12
	// Site is the entry's site: a site auditor's searches set it, a deployment auditor's
	// leave it empty (every site, and the entries of no site).
	Site     string
	From, To time.Time // From <= the entry's time < To
	Limit    int       // at most this many entries, 1..MaxAuditSearch
}

// AuditLead names the audit_index column an AuditSearch query leads with: the index the
// query walks. Both stores choose it with AuditQuery.Plan, so that they cannot disagree.
type AuditLead int

// The leads, in the order Plan prefers them.
const (
	AuditLeadAll     AuditLead = iota // every entry, newest first
	AuditLeadPatient                  // the patient's blind index
	AuditLeadAgent                    // the agent
	AuditLeadOutcome                  // the outcome
	AuditLeadAction                   // the action
	AuditLeadTime                     // the time range, latest first
	AuditLeadSite                     // the site (a site auditor's search with no other filter)
)

// Plan checks q and returns the column its query leads with (the patient, else the agent,
// the outcome, the action, the time range, the site) and the query's parameters in the order
// both stores number them: patient index, agent, action, outcome, from, to (as
// AuditIndexTime, "" and "~" for no bound), limit, site ("" for any). Returns EINVALID for a Limit outside 1..MaxAuditSearch.
func (q AuditQuery) Plan() (AuditLead, []any, error) {
	if q.Limit < 1 || q.Limit > MaxAuditSearch {
		return 0, nil, Errorf(EINVALID, "an audit search returns 1 to %d entries", MaxAuditSearch)
	}
	from, to := "", "~" // '~' sorts after every digit (the index columns compare bytes): no upper bound
	if !q.From.IsZero() {
		from = AuditIndexTime(q.From)
	}
	if !q.To.IsZero() {
		to = AuditIndexTime(q.To)
	}
	args := []any{q.PatientIndex, q.AgentID, q.Action, q.Outcome, from, to, q.Limit, q.Site}
	switch {
	case q.PatientIndex != "":
		return AuditLeadPatient, args, nil
	case q.AgentID != "":
		return AuditLeadAgent, args, nil
	case q.Outcome != "":
		return AuditLeadOutcome, args, nil
	case q.Action != "":
		return AuditLeadAction, args, nil
	case !q.From.IsZero() || !q.To.IsZero():
		return AuditLeadTime, args, nil
	case q.Site != "":
		return AuditLeadSite, args, nil
	}
	return AuditLeadAll, args, nil
}

// AuditIndexTime is the form of an entry time that the stores' audit index keeps and
// compares: UTC, fixed width, nine fraction digits, so that text order is time order.
func AuditIndexTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000")
}

// OutboxStore keeps, for each outbox destination, the index of the next audit entry to
// deliver to it (package outbox).
type OutboxStore interface {
	// OutboxCursor returns the index of the next entry to deliver to destination, 0 when
	// nothing was delivered yet.
	OutboxCursor(ctx context.Context, destination string) (uint64, error)
	// SetOutboxCursor records that every entry before next was delivered to destination.
	// The cursor only moves forward: a lower next is ignored. Returns EINVALID for what
	// CheckOutboxCursor refuses: an empty destination or a next beyond what the log can hold.
	SetOutboxCursor(ctx context.Context, destination string, next uint64) error
	// OutboxCursors returns every destination's cursor (an archive must not pass them).
	OutboxCursors(ctx context.Context) (map[string]uint64, error)
	// ClaimOutbox takes or renews the lease of destination for holder (a node's name) for
	// ttl from the store's clock, and reports whether holder has it: a lease another holder
	// took and that has not expired is kept. One node at a time then delivers to a
	// destination, so a cluster sends each entry once. Returns EINVALID for an empty
	// destination or holder, or a ttl outside (0, 1 h].
	ClaimOutbox(ctx context.Context, destination, holder string, ttl time.Duration) (bool, error)
}

// CheckOutboxClaim reports whether ClaimOutbox may take a lease; both stores call it.
func CheckOutboxClaim(destination, holder string, ttl time.Duration) error {
	switch {
	case destination == "":
		return Errorf(EINVALID, "outbox destination is empty")
	case holder == "":
		return Errorf(EINVALID, "outbox lease holder is empty")
	case ttl <= 0 || ttl > time.Hour:
		return Errorf(EINVALID, "outbox lease of %s is out of range (more than 0, at most 1h)", ttl)
	}
	return nil
}

// CheckOutboxCursor reports whether SetOutboxCursor may record next for destination: EINVALID
// for an empty destination and for a next beyond what a store's log can hold (math.MaxInt64).
// Both stores call it, so that they refuse the same cursor with the same error.
func CheckOutboxCursor(destination string, next uint64) error {
	if destination == "" {
		return Errorf(EINVALID, "outbox destination is empty")
	}
	if next > math.MaxInt64 {
		return Errorf(EINVALID, "outbox cursor out of range")
	}
	return nil
}
