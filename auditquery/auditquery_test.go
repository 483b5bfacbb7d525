package auditquery_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auditquery"
	"github.com/vitalgate/vitalgate/sqlite"
)

// countingStore is the real store, counting whole-log reads.
type countingStore struct {
	*sqlite.DB
	scans int
}

func (s *countingStore) AuditEntries(ctx context.Context, from, to uint64, fn func(vitalgate.AuditRecord) error) error {
	s.scans++
	return s.DB.AuditEntries(ctx, from, to, fn)
}

// failingLog is a Recorder whose appends fail while fail is set (a full disk).
type failingLog struct {
	*audit.Log
	fail bool
}

func (l *failingLog) Append(ctx context.Context, es ...audit.Entry) error {
	if l.fail {
		return vitalgate.Errorf(vitalgate.EUNAVAILABLE, "database or disk is full")
	}
	return l.Log.Append(ctx, es...)
}

// indexer is a test blind index: the id's bytes.
type indexer struct{}

func (indexer) SitePatientIndex(site, id string) []byte { return []byte(id) }

type fixture struct {
	svc   *auditquery.Service
	store *countingStore
	log   *failingLog
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key, err := audit.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner("test/audit", key)
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{DB: db}
	l := &failingLog{Log: audit.NewLog(db, signer, "test/audit", "n1", nil)}
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	for i, e := range []audit.Entry{
		{Action: "C", Type: "rest", AgentType: "device", AgentID: "dev-1", PatientIndex: audit.PatientIndex([]byte("pat-1"))},
		{Action: "R", Type: "rest", AgentType: "client", AgentID: "ehr", PatientIndex: audit.PatientIndex([]byte("pat-1"))},
		{Action: "R", Type: "rest", AgentType: "client", AgentID: "ehr", PatientIndex: audit.PatientIndex([]byte("pat-2"))},
		{Action: "E", Type: "authn", AgentType: "client", AgentID: "ehr", Outcome: "4"},
	} {
		e.Time = t0.Add(time.Duration(i) * time.Hour)
		if err := l.Log.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	return fixture{svc: &auditquery.Service{Store: st, Log: l, Patients: indexer{}}, store: st, log: l}
}

var auditor = vitalgate.Principal{Kind: "client", Site: vitalgate.AllSites, ID: "aud", Role: vitalgate.RoleAuditor, Scopes: []string{"system/AuditEvent.rs"}}

func ids(evs [][]byte) []string {
	var out []string
	for _, e := range evs {
		i := strings.Index(string(e), `"id":"`)
		out = append(out, strings.SplitN(string(e)[i+6:], `"`, 2)[0])
	}
	return out
}

// TestSearch: the search answers from the index (no read of the log), newest first, and
// records itself with its count.
func TestSearch(t *testing.T) {
	tests := []struct {
		name   string
		params map[string][]string
		want   []string
	}{
		{"all", nil, []string{"3", "2", "1", "0"}},
		{"patient", map[string][]string{"patient": {"Patient/pat-1"}}, []string{"1", "0"}},
		{"agent and action", map[string][]string{"agent": {"ehr"}, "action": {"R"}}, []string{"2", "1"}},
		{"outcome", map[string][]string{"outcome": {"4"}}, []string{"3"}},
		{"date", map[string][]string{"date": {"ge2026-01-02T04:30:00Z"}}, []string{"3", "2"}},
		{"day", map[string][]string{"date": {"2026-01-02"}, "_count": {"2"}}, []string{"3", "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			q, err := auditquery.ParseQuery(tt.params)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := f.svc.Search(context.Background(), auditor, q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(evs); !slices.Equal(got, tt.want) {
				t.Errorf("Search = %v, want %v", got, tt.want)
			}
			if f.store.scans != 0 {
				t.Errorf("Search read the log %d times; it must use the index", f.store.scans)
			}
			last := lastEntry(t, f)
			if last.Subtype != "search" || last.AgentID != "aud" || last.Count != len(tt.want) || last.Outcome != audit.OutcomeSuccess {
				t.Errorf("search recorded as %+v", last)
			}
		})
	}
}

func lastEntry(t *testing.T, f fixture) audit.Entry {
	t.Helper()
	var last audit.Entry
	if err := f.store.DB.AuditEntries(context.Background(), 0, math.MaxUint64, func(r vitalgate.AuditRecord) error {
		var err error
		last, err = audit.UnmarshalEntry(r.Data)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return last
}

// TestSearchRefusals: without the scope the search is refused and recorded; when its entry
// cannot be written, it fails and returns nothing (issue 13 finding 12).
func TestSearchRefusals(t *testing.T) {
	t.Run("scope", func(t *testing.T) {
		f := newFixture(t)
		p := auditor
		p.ID, p.Scopes = "ehr", []string{"system/Observation.rs"}
		_, err := f.svc.Search(context.Background(), p, auditquery.Query{})
		if vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
			t.Fatalf("Search without the scope = %v, want %s", err, vitalgate.EFORBIDDEN)
		}
		if last := lastEntry(t, f); last.AgentID != "ehr" || last.Outcome != audit.OutcomeMinorFailure || last.Subtype != "search" {
			t.Errorf("refusal recorded as %+v", last)
		}
	})
	t.Run("not audited", func(t *testing.T) {
		f := newFixture(t)
		f.log.fail = true
		evs, err := f.svc.Search(context.Background(), auditor, auditquery.Query{})
		if vitalgate.ErrorCode(err) != vitalgate.EUNAVAILABLE || evs != nil {
			t.Fatalf("Search with the log failing = %d events, %v; want none and %s", len(evs), err, vitalgate.EUNAVAILABLE)
		}
	})
}

// TestParseQuery: the parameters and their errors.
func TestParseQuery(t *testing.T) {
	day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		params map[string][]string
		want   auditquery.Query
		field  string // the parameter an EINVALID names; "" for success
	}{
		{"none", nil, auditquery.Query{Count: 100}, ""},
		{"all", map[string][]string{"patient": {"p1"}, "agent": {"a"}, "action": {"R"}, "outcome": {"8"}, "_count": {"5000"}},
			auditquery.Query{PatientID: "p1", Agent: "a", Action: "R", Outcome: "8", Count: 1000}, ""},
		{"day", map[string][]string{"date": {"2026-01-02"}}, auditquery.Query{From: day, To: day.Add(24 * time.Hour), Count: 100}, ""},
		{"le", map[string][]string{"date": {"le2026-01-02"}}, auditquery.Query{To: day, Count: 100}, ""},
		{"bad action", map[string][]string{"action": {"X"}}, auditquery.Query{}, "action"},
		{"bad outcome", map[string][]string{"outcome": {"5"}}, auditquery.Query{}, "outcome"},
		{"bad date", map[string][]string{"date": {"yesterday"}}, auditquery.Query{}, "date"},
		{"bad count", map[string][]string{"_count": {"0"}}, auditquery.Query{}, "_count"},
		{"repeated", map[string][]string{"agent": {"a", "b"}}, auditquery.Query{}, "agent"},
		{"unknown", map[string][]string{"subtype": {"x"}}, auditquery.Query{}, "subtype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := auditquery.ParseQuery(tt.params)
			if tt.field != "" {
				var ve *vitalgate.Error
				if vitalgate.ErrorCode(err) != vitalgate.EINVALID || !errors.As(err, &ve) || ve.Field != tt.field {
					t.Fatalf("ParseQuery = %v, want EINVALID naming %s", err, tt.field)
				}
				return
			}
			if err != nil || q != tt.want {
				t.Fatalf("ParseQuery = %+v, %v; want %+v", q, err, tt.want)
			}
		})
	}
}

// TestProofs: proofs need the read scope and stay within the log.
func TestProofs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	inc, err := f.svc.Inclusion(ctx, auditor, 1, 4)
	if err != nil || len(inc.Entry) == 0 || len(inc.Proof) != 2 {
		t.Fatalf("Inclusion = %+v, %v", inc, err)
	}
	if _, err := f.svc.Inclusion(ctx, auditor, 1, 99); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("Inclusion beyond the log = %v", err)
	}
	if _, err := f.svc.Consistency(ctx, auditor, 2, 4); err != nil {
		t.Errorf("Consistency = %v", err)
	}
	p := auditor
	p.Scopes = []string{"system/Observation.rs"}
	if _, err := f.svc.Consistency(ctx, p, 2, 4); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Errorf("Consistency without the scope = %v", err)
	}
	if _, err := f.svc.Checkpoint(ctx, p); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Errorf("Checkpoint without the scope = %v", err)
	}
}

// siteIndexer is a test blind index that differs per site, as the vault's does.
type siteIndexer struct{}

func (siteIndexer) SitePatientIndex(site, id string) []byte { return []byte(site + "/" + id) }

type siteList []string

func (l siteList) Sites(context.Context) ([]vitalgate.Site, error) {
	var out []vitalgate.Site
	for _, id := range l {
		out = append(out, vitalgate.Site{ID: id})
	}
	return out, nil
}

// TestPatientAcrossSites: patient ids are unique per site only, so a deployment auditor's
// patient search finds the patients of that id in every site (newest first, at most
// _count), while a site auditor's finds its own site's patient alone.
func TestPatientAcrossSites(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, site := range []string{"a", "default", "b"} { // entries 4, 5, 6
		e := audit.Entry{Time: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), Action: "R", Type: "rest", AgentType: "client", AgentID: "ehr-" + site,
			Site: site, PatientIndex: audit.PatientIndex(siteIndexer{}.SitePatientIndex(site, "pat-9"))}
		if err := f.log.Log.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	f.svc.Patients, f.svc.Sites = siteIndexer{}, siteList{"a", "b", "default"}
	siteA := auditor
	siteA.Site = "a"
	for _, c := range []struct {
		name  string
		who   vitalgate.Principal
		count int
		want  []string
	}{
		{"deployment auditor", auditor, 0, []string{"6", "5", "4"}},
		{"deployment auditor, _count 2", auditor, 2, []string{"6", "5"}},
		{"site auditor", siteA, 0, []string{"4"}},
	} {
		evs, err := f.svc.Search(ctx, c.who, auditquery.Query{PatientID: "pat-9", Count: c.count})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(evs); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestArchivedEntries: after an archive of the first two entries, a search whose window
// reaches them ends with an OperationOutcome that says so (and finds the live entries), one
// that starts after them has no such note, and the inclusion proof of an archived entry is
// refused as not found with a message that says it is archived; a retained entry's proof
// still works.
func TestArchivedEntries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var hs [][32]byte
	if err := f.store.DB.AuditEntries(ctx, 0, 2, func(r vitalgate.AuditRecord) error {
		hs = append(hs, audit.LeafHash(r.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	seg := vitalgate.AuditSegment{ID: "as-0-2-test", From: 0, To: 2, Before: t0.Add(90 * time.Minute), LastTime: t0.Add(time.Hour),
		KeepUntil: t0.AddDate(6, 0, 0), File: strings.Repeat("ab", 32)}
	if err := f.store.ArchiveAudit(ctx, seg, hs); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		params   map[string][]string
		want     []string
		archived bool
	}{
		{"all", map[string][]string{"agent": {"ehr"}}, []string{"3", "2"}, true},
		{"before the archive's newest", map[string][]string{"agent": {"ehr"}, "date": {"ge2026-01-02T03:30:00Z"}}, []string{"3", "2"}, true},
		{"after the archive", map[string][]string{"agent": {"ehr"}, "date": {"ge2026-01-02T04:30:00Z"}}, []string{"3", "2"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, err := auditquery.ParseQuery(tt.params)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := f.svc.Search(ctx, auditor, q)
			if err != nil {
				t.Fatal(err)
			}
			got := ids(evs)
			if tt.archived {
				if len(got) == 0 || got[len(got)-1] != auditquery.ArchivedOutcomeID ||
					!strings.Contains(string(evs[len(evs)-1]), "audit entries 0 to 1") || !strings.Contains(string(evs[len(evs)-1]), "as-0-2-test") {
					t.Fatalf("search of a window with archived entries: %v %s", got, evs[len(evs)-1])
				}
				got = got[:len(got)-1]
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("search = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := f.svc.Inclusion(ctx, auditor, 1, 4); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND || !strings.Contains(err.Error(), "archived") {
		t.Errorf("inclusion of an archived entry = %v, want not found because archived", err)
	}
	if inc, err := f.svc.Inclusion(ctx, auditor, 2, 4); err != nil || len(inc.Entry) == 0 {
		t.Errorf("inclusion of a retained entry: %v", err)
	}
}
