// Package auditquery is the capability that serves the audit log to auditors: AuditEvent
// search through the stores' audit index (so a search reads the matching entries, not the
// whole log), the latest signed checkpoint, and inclusion and consistency proofs. It checks
// the auditor's scopes and records every search, allowed or refused, before it answers: a
// search whose audit entry cannot be written fails.
//
// It sits above the pure package audit (encoding, Merkle tree, proofs) and below the
// transports, which decode a request, make one call and encode the answer.
package auditquery

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/fhir"
)

// Store is what the service reads: the log itself and its search index.
type Store interface {
	// AuditSize returns the number of entries in the log.
	AuditSize(ctx context.Context) (uint64, error)
	// AuditEntries calls fn for the entries with from <= Index < to, in index order.
	AuditEntries(ctx context.Context, from, to uint64, fn func(vitalgate.AuditRecord) error) error
	// AuditSearch calls fn for the entries matching q, newest first, at most q.Limit.
	// Returns EINVALID for a bad limit.
	AuditSearch(ctx context.Context, q vitalgate.AuditQuery, fn func(vitalgate.AuditRecord) error) error
	// AuditSegments returns the archive segments, in log order: the entries whose data left
	// the live log (vitalgate audit archive).
	AuditSegments(ctx context.Context) ([]vitalgate.AuditSegment, error)
}

// Recorder appends audit entries and serves the latest signed checkpoint (*audit.Log).
type Recorder interface {
	// Append records entries; an error means they were not recorded.
	Append(ctx context.Context, es ...audit.Entry) error
	// Latest returns the latest signed checkpoint note. Returns ENOTFOUND before the first.
	Latest(ctx context.Context) ([]byte, error)
}

// PatientIndexer turns a Patient id of a site into its blind index (*vault.Vault).
type PatientIndexer interface {
	SitePatientIndex(site, patientID string) []byte
}

// SiteLister lists the deployment's sites (the store).
type SiteLister interface {
	Sites(ctx context.Context) ([]vitalgate.Site, error)
}

// Service serves the audit log to auditors.
type Service struct {
	Store    Store
	Log      Recorder
	Patients PatientIndexer
	// Sites lets a deployment auditor's patient search cover every site; without it the
	// search covers the default site's patients only.
	Sites SiteLister
	// Key verifies the log's checkpoints (audit.Log.Verifier), for Status.
	Key audit.Verifier
}

// Default and largest number of AuditEvents one search returns.
const (
	DefaultCount = 100
	MaxCount     = vitalgate.MaxAuditSearch
)

// Query is an AuditEvent search: every set field must match.
type Query struct {
	PatientID string    // a Patient id (matched by its blind index)
	Agent     string    // a device or client id
	Action    string    // C, R, U, D or E
	Outcome   string    // 0, 4, 8 or 12
	From, To  time.Time // From <= recorded < To; zero for unbounded
	Count     int       // at most this many, 1..MaxCount (0 means DefaultCount)
}

// ParseQuery decodes the FHIR search parameters of GET /fhir/AuditEvent: patient (a Patient
// id, optionally "Patient/"-prefixed), agent (a device or client id), action (C R U D E),
// outcome (0 4 8 12), date (YYYY-MM-DD or RFC 3339, with a ge/gt/le/lt/eq prefix; a bare
// value or eq means that day, or that instant's day), and _count (default 100, at most
// 1000). Each parameter takes one value of at most 256 characters. Returns EINVALID naming
// the parameter.
func ParseQuery(params map[string][]string) (Query, error) {
	q := Query{Count: DefaultCount}
	for name, vals := range params {
		if len(vals) != 1 || len(vals[0]) > 256 || vals[0] == "" {
			return Query{}, vitalgate.FieldErrorf(vitalgate.EINVALID, trunc(name), "each parameter takes one value of at most 256 characters")
		}
		v := vals[0]
		switch name {
		case "patient":
			q.PatientID = strings.TrimPrefix(v, "Patient/")
		case "agent":
			q.Agent = v
		case "action":
			if !strings.Contains("CRUDE", v) || len(v) != 1 {
				return Query{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "action", "action is one of C, R, U, D, E")
			}
			q.Action = v
		case "outcome":
			switch v {
			case audit.OutcomeSuccess, audit.OutcomeMinorFailure, audit.OutcomeSeriousFailure, audit.OutcomeMajorFailure:
			default:
				return Query{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "outcome", "outcome is one of 0, 4, 8, 12")
			}
			q.Outcome = v
		case "date":
			prefix, val := v[:min(2, len(v))], v
			switch prefix {
			case "ge", "gt", "le", "lt", "eq":
				val = v[2:]
			default:
				prefix = "eq"
			}
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				t, err = time.Parse("2006-01-02", val)
			}
			if err != nil {
				return Query{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "date", "date must be YYYY-MM-DD or RFC 3339, with an optional ge/gt/le/lt/eq prefix")
			}
			switch prefix {
			case "ge", "gt":
				q.From = t
			case "le", "lt":
				q.To = t
			default:
				q.From, q.To = t, t.Add(24*time.Hour)
			}
		case "_count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Query{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "_count", "_count must be a positive integer")
			}
			q.Count = min(n, MaxCount)
		default:
			return Query{}, vitalgate.FieldErrorf(vitalgate.EINVALID, trunc(name), "unknown search parameter")
		}
	}
	return q, nil
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// Search returns the AuditEvents (FHIR R4 JSON) matching q, newest first. It needs the
// AuditEvent search scope and records the search (or its refusal) before answering. A site
// auditor sees the entries of its site only (and a patient id names a patient of its site);
// a deployment auditor (vitalgate.AllSites) sees every entry, and its patient id names the
// patients of that id in every site (patient ids are unique per site only).
// Errors: EFORBIDDEN (scope), EINVALID (query), EUNAVAILABLE (the search could not be
// audited, or the store is busy).
func (s *Service) Search(ctx context.Context, p vitalgate.Principal, q Query) ([][]byte, error) {
	if err := access.RequireScope(p, "AuditEvent", access.OpSearch); err != nil {
		return nil, s.record(ctx, p, 0, err)
	}
	if q.Count == 0 {
		q.Count = DefaultCount
	}
	if q.Count < 1 || q.Count > MaxCount {
		return nil, s.record(ctx, p, 0, vitalgate.FieldErrorf(vitalgate.EINVALID, "_count", "_count must be 1 to %d", MaxCount))
	}
	if p.Site == "" {
		return nil, s.record(ctx, p, 0, vitalgate.Errorf(vitalgate.EFORBIDDEN, "this client belongs to no site"))
	}
	sq := vitalgate.AuditQuery{AgentID: q.Agent, Action: q.Action, Outcome: q.Outcome, From: q.From, To: q.To, Limit: q.Count}
	patientSites := []string{vitalgate.DefaultSite}
	if p.Site != vitalgate.AllSites {
		sq.Site, patientSites = p.Site, []string{p.Site}
	} else if q.PatientID != "" && s.Sites != nil {
		sites, err := s.Sites.Sites(ctx)
		if err != nil {
			return nil, s.record(ctx, p, 0, err)
		}
		patientSites = patientSites[:0]
		for _, st := range sites {
			patientSites = append(patientSites, st.ID)
		}
	}
	var recs []vitalgate.AuditRecord
	collect := func(r vitalgate.AuditRecord) error { recs = append(recs, r); return nil }
	var err error
	if q.PatientID == "" {
		err = s.Store.AuditSearch(ctx, sq, collect)
	} else {
		seen := map[string]bool{}
		for _, site := range patientSites { // one indexed search per site's blind index
			sq.PatientIndex = audit.PatientIndex(s.Patients.SitePatientIndex(site, q.PatientID))
			if seen[sq.PatientIndex] {
				continue
			}
			seen[sq.PatientIndex] = true
			if err = s.Store.AuditSearch(ctx, sq, collect); err != nil {
				break
			}
		}
		// Newest first across the sites, at most Count; an entry is listed once.
		slices.SortFunc(recs, func(a, b vitalgate.AuditRecord) int { return cmp.Compare(b.Index, a.Index) })
		recs = slices.CompactFunc(recs, func(a, b vitalgate.AuditRecord) bool { return a.Index == b.Index })
		recs = recs[:min(len(recs), q.Count)]
	}
	if err != nil {
		return nil, s.record(ctx, p, 0, err)
	}
	var out [][]byte
	for _, r := range recs {
		e, err := audit.UnmarshalEntry(r.Data)
		if err != nil {
			continue // not an entry of this package: never shown
		}
		ev, err := e.FHIR(r.Index)
		if err != nil {
			return nil, s.record(ctx, p, 0, vitalgate.Internal(err, "audit event"))
		}
		out = append(out, ev)
	}
	if err := s.record(ctx, p, len(out), nil); err != nil {
		return nil, err
	}
	note, err := s.archivedNote(ctx, q)
	if err != nil {
		return nil, err
	}
	if note != nil {
		out = append(out, note)
	}
	return out, nil
}

// ArchivedOutcomeID is the id of the OperationOutcome that a search whose time window
// reaches archived entries ends with.
const ArchivedOutcomeID = "archived-audit-entries"

// archivedNote returns, for a search whose window reaches back to archived entries (no lower
// bound, or one before the newest archived entry), an OperationOutcome (FHIR JSON) saying
// plainly that those entries were not searched and where they are; nil otherwise.
func (s *Service) archivedNote(ctx context.Context, q Query) ([]byte, error) {
	segs, err := s.Store.AuditSegments(ctx)
	if err != nil || len(segs) == 0 {
		return nil, err
	}
	last := segs[len(segs)-1]
	newest := last.LastTime
	for _, g := range segs {
		if g.LastTime.After(newest) {
			newest = g.LastTime
		}
	}
	if !q.From.IsZero() && !q.From.Before(newest) {
		return nil, nil
	}
	ids := make([]string, len(segs))
	for i, g := range segs {
		ids[i] = g.ID
	}
	oo := fhir.NewOperationOutcome(fhir.SeverityInformation, fhir.IssueInformational,
		fmt.Sprintf("audit entries 0 to %d (logged before %s, the newest at %s) are archived in segments %s: they are no longer in the live log, and this search did not read them; an operator with the recovery key exports them with `vitalgate audit export --archive`",
			last.To-1, last.Before.UTC().Format(time.RFC3339), newest.UTC().Format(time.RFC3339), strings.Join(ids, ", ")))
	oo.ID = ArchivedOutcomeID
	b, err := oo.Marshal()
	if err != nil {
		return nil, vitalgate.Internal(err, "archived entries note")
	}
	return b, nil
}

// record appends the entry of an AuditEvent search; err is the search's refusal, if any. It
// returns err, or EUNAVAILABLE if the entry could not be written.
func (s *Service) record(ctx context.Context, p vitalgate.Principal, n int, err error) error {
	e := audit.Entry{Action: audit.ActionRead, Type: "rest", Subtype: "search", AgentType: access.AgentType(p),
		AgentID: p.ID, AgentRole: string(p.Role), Resources: []string{"AuditEvent"}, Count: n}
	if p.Site != vitalgate.AllSites {
		e.Site = p.Site
	}
	if err != nil {
		e.Outcome = audit.OutcomeMinorFailure
		if c := vitalgate.ErrorCode(err); c == vitalgate.EINTERNAL || c == vitalgate.EUNAVAILABLE {
			e.Outcome = audit.OutcomeSeriousFailure
		}
		e.OutcomeDesc = vitalgate.ErrorCode(err)
	}
	if aerr := s.Log.Append(ctx, e); aerr != nil {
		return vitalgate.Unavailable(aerr, "the search could not be audited; try again")
	}
	return err
}

// Checkpoint returns the latest signed checkpoint (a C2SP signed note). It needs the
// AuditEvent read scope. Errors: EFORBIDDEN, ENOTFOUND (none signed yet).
func (s *Service) Checkpoint(ctx context.Context, p vitalgate.Principal) ([]byte, error) {
	if err := access.RequireScope(p, "AuditEvent", access.OpRead); err != nil {
		return nil, err
	}
	return s.Log.Latest(ctx)
}

// Inclusion is an inclusion proof of one entry.
type Inclusion struct {
	Index, Size uint64
	Entry       []byte // the entry's stored bytes
	Proof       [][audit.HashSize]byte
}

// Inclusion proves that entry index is in the tree of the first size entries. It needs the
// AuditEvent read scope; a site auditor gets only the entries of its site (another's is
// refused as not found, and the refusal recorded). Errors: EFORBIDDEN, ENOTFOUND, EINVALID
// (index not below size, or size beyond the log).
func (s *Service) Inclusion(ctx context.Context, p vitalgate.Principal, index, size uint64) (Inclusion, error) {
	if err := s.checkProof(ctx, p, size); err != nil {
		return Inclusion{}, err
	}
	proof, err := audit.ProveInclusion(ctx, audit.StoreLog{Store: s.Store}, index, size)
	if err != nil {
		return Inclusion{}, err
	}
	inc := Inclusion{Index: index, Size: size, Proof: proof}
	var archived bool
	if err := s.Store.AuditEntries(ctx, index, index+1, func(r vitalgate.AuditRecord) error {
		inc.Entry, archived = r.Data, r.Archived()
		return nil
	}); err != nil {
		return Inclusion{}, err
	}
	if archived {
		return Inclusion{}, vitalgate.Errorf(vitalgate.ENOTFOUND,
			"audit entry %d is archived: its data is no longer in the live log but in an archive segment (vitalgate audit archive); its leaf hash is, so the checkpoints still cover it", index)
	}
	if p.Site != vitalgate.AllSites {
		if e, err := audit.UnmarshalEntry(inc.Entry); err != nil || e.Site != p.Site {
			refused := vitalgate.Errorf(vitalgate.ENOTFOUND, "no audit entry %d is visible to this auditor", index)
			_ = s.Log.Append(ctx, audit.Entry{Action: audit.ActionRead, Type: "rest", Subtype: "read",
				AgentType: audit.AgentClient, AgentID: p.ID, AgentRole: string(p.Role), Site: p.Site,
				Resources: []string{"AuditEvent/" + strconv.FormatUint(index, 10)}, Outcome: audit.OutcomeMinorFailure,
				OutcomeDesc: "forbidden: cross-site: the entry belongs to another site or to the whole deployment"})
			return Inclusion{}, refused
		}
	}
	return inc, nil
}

// Consistency proves that the tree of the first from entries is a prefix of the tree of the
// first to entries. It needs the AuditEvent read scope. Errors: EFORBIDDEN, EINVALID (from >
// to, or to beyond the log).
func (s *Service) Consistency(ctx context.Context, p vitalgate.Principal, from, to uint64) ([][audit.HashSize]byte, error) {
	if err := s.checkProof(ctx, p, to); err != nil {
		return nil, err
	}
	return audit.ProveConsistency(ctx, audit.StoreLog{Store: s.Store}, from, to)
}

// checkProof checks the scope and refuses proofs beyond the log.
func (s *Service) checkProof(ctx context.Context, p vitalgate.Principal, size uint64) error {
	if err := access.RequireScope(p, "AuditEvent", access.OpRead); err != nil {
		return err
	}
	if p.Site == "" {
		return vitalgate.Errorf(vitalgate.EFORBIDDEN, "this client belongs to no site")
	}
	n, err := s.Store.AuditSize(ctx)
	if err != nil {
		return err
	}
	if size > n {
		return vitalgate.Errorf(vitalgate.EINVALID, "size is beyond the log (%d entries)", n)
	}
	return nil
}

// Status is what an auditor sees of the log's integrity at a glance: its size and its
// latest signed checkpoint, whether that checkpoint's signature verifies with this log's
// key, and how many entries came after it (not yet covered by a signature).
type Status struct {
	Size       uint64           // entries in the log
	Note       string           // the latest signed checkpoint ("" before the first)
	Checkpoint audit.Checkpoint // its contents, when its signature verifies
	Verified   bool             // the signature verifies with Key, and the log is at least that long
	Problem    string           // why not, when a checkpoint exists and Verified is false
}

// Status returns the log's size and latest checkpoint, the checkpoint's signature checked
// with s.Key. It needs the AuditEvent read scope. Errors: EFORBIDDEN.
func (s *Service) Status(ctx context.Context, p vitalgate.Principal) (Status, error) {
	if err := access.RequireScope(p, "AuditEvent", access.OpRead); err != nil {
		return Status{}, err
	}
	var st Status
	var err error
	if st.Size, err = s.Store.AuditSize(ctx); err != nil {
		return st, err
	}
	note, err := s.Log.Latest(ctx)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return st, nil
	} else if err != nil {
		return st, err
	}
	st.Note = string(note)
	cp, err := audit.OpenCheckpoint(note, s.Key)
	switch {
	case err != nil:
		st.Problem = "the latest checkpoint's signature does not verify with this log's key: " + err.Error()
	case cp.Size > st.Size:
		st.Problem = "the latest checkpoint covers " + strconv.FormatUint(cp.Size, 10) + " entries but the log holds " +
			strconv.FormatUint(st.Size, 10) + ": entries were removed"
	default:
		st.Checkpoint, st.Verified = cp, true
	}
	return st, nil
}

// Entry returns the entry at index as a FHIR AuditEvent, for an auditor of its site (or of
// the whole deployment), and records the read. Errors: EFORBIDDEN (scope), ENOTFOUND (no
// such entry, or one of another site: the same answer), EUNAVAILABLE (not audited).
func (s *Service) Entry(ctx context.Context, p vitalgate.Principal, index uint64) ([]byte, error) {
	if err := access.RequireScope(p, "AuditEvent", access.OpRead); err != nil {
		return nil, s.record(ctx, p, 0, err)
	}
	var ev []byte
	err := s.Store.AuditEntries(ctx, index, index+1, func(r vitalgate.AuditRecord) error {
		e, err := audit.UnmarshalEntry(r.Data)
		if err != nil || (p.Site != vitalgate.AllSites && e.Site != p.Site) {
			return nil
		}
		ev, err = e.FHIR(r.Index)
		return err
	})
	if err == nil && ev == nil {
		err = vitalgate.Errorf(vitalgate.ENOTFOUND, "AuditEvent/%d is not known", index)
	}
	if err != nil {
		return nil, s.record(ctx, p, 0, err)
	}
	return ev, s.record(ctx, p, 1, nil)
}
