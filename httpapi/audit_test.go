package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // to make the database refuse audit entries, as a full disk would

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/httpapi"
)

// TestEveryAccessIsAudited: creates, reads, searches, token grants and refusals each leave
// an entry, with no clinical values; the proofs the server gives verify with the public key.
func TestEveryAccessIsAudited(t *testing.T) {
	e := MustEnv(t)
	ids := seed(t, e, 2)
	ehr := e.token("ehr", e.addClient("ehr", vitalgate.RoleEHRSystem), "")
	if r := e.bearer("GET", "/fhir/Observation/"+ids[0], ehr, nil, ""); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := e.bearer("GET", "/fhir/Observation?patient=pat-1", ehr, nil, ""); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := e.bearer("GET", "/fhir/Observation?patient=pat-1", "forged", nil, ""); r.status != 401 {
		t.Fatal(r.status)
	}
	ctx := context.Background()
	size, err := e.store.AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var entries []audit.Entry
	if err := e.store.AuditEntries(ctx, 0, size, func(r vitalgate.AuditRecord) error {
		if strings.Contains(string(r.Data), "pat-1") || strings.Contains(string(r.Data), "8867-4") || strings.Contains(string(r.Data), `"44"`) {
			t.Errorf("entry %d holds patient data: %s", r.Index, r.Data)
		}
		en, err := audit.UnmarshalEntry(r.Data)
		entries = append(entries, en)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"enroll/simpleenroll": false, "rest/create": false, "authn/token": false, "rest/read": false, "rest/search": false, "authn/token:fail": false}
	for _, en := range entries {
		k := en.Type + "/" + en.Subtype
		if en.Outcome != audit.OutcomeSuccess {
			k = "authn/token:fail"
			if en.Type != "authn" {
				continue
			}
		}
		if _, ok := want[k]; ok {
			want[k] = true
		}
		if en.Type == "rest" && en.Subtype == "read" && (en.AgentID != "ehr" || en.PatientIndex == "" || len(en.Resources) != 1) {
			t.Errorf("read entry lacks who/which patient/what: %+v", en)
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no %s entry in the audit log", k)
		}
	}

	// Proofs from the API verify against a signed checkpoint with only the public key.
	if _, err := e.audit.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	auditor := e.token("aud", e.addSiteClient("aud", vitalgate.RoleAuditor, vitalgate.AllSites), "") // deployment-wide: it sees the entries of no site too
	r := e.bearer("GET", "/audit/checkpoint", auditor, nil, "")
	cp, err := audit.OpenCheckpoint(r.body, e.audit.Verifier())
	if r.status != 200 || err != nil {
		t.Fatalf("checkpoint: %d %v %s", r.status, err, r.body)
	}
	for _, idx := range []uint64{0, cp.Size / 2, cp.Size - 1} {
		r := e.bearer("GET", "/audit/proof/inclusion?index="+itoa(idx)+"&size="+itoa(cp.Size), auditor, nil, "")
		var pr struct {
			Entry string
			Proof []string
		}
		if err := json.Unmarshal(r.body, &pr); err != nil || r.status != 200 {
			t.Fatalf("inclusion: %d %s", r.status, r.body)
		}
		if err := audit.VerifyInclusion(audit.LeafHash([]byte(pr.Entry)), idx, cp.Size, decode(t, pr.Proof), cp.Root); err != nil {
			t.Fatalf("inclusion proof of %d does not verify: %v", idx, err)
		}
	}
	if r := e.bearer("GET", "/audit/proof/inclusion?index=0&size=999999", auditor, nil, ""); r.status != 400 {
		t.Fatalf("proof beyond the log: %d", r.status)
	}
	r = e.bearer("GET", "/fhir/AuditEvent?patient=pat-1&action=R", auditor, nil, "")
	if r.status != 200 || !strings.Contains(string(r.body), `"AuditEvent"`) {
		t.Fatalf("AuditEvent search: %d %s", r.status, r.body)
	}
}

func decode(t *testing.T, ps []string) [][32]byte {
	var out [][32]byte
	for _, p := range ps {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil || len(b) != 32 {
			t.Fatalf("bad proof hash %q", p)
		}
		out = append(out, [32]byte(b))
	}
	return out
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// auditEntries returns the decoded audit log.
func auditEntries(t *testing.T, e *env) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := e.store.AuditEntries(context.Background(), 0, math.MaxUint64, func(r vitalgate.AuditRecord) error {
		en, err := audit.UnmarshalEntry(r.Data)
		out = append(out, en)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// refusals returns the entries with a failure outcome of type typ, and the number of
// decisions they record (each entry stands for max(1, Occurrences)).
func refusals(t *testing.T, e *env, typ string) (entries, decisions int) {
	t.Helper()
	for _, en := range auditEntries(t, e) {
		if en.Outcome != audit.OutcomeSuccess && en.Type == typ {
			entries++
			decisions += max(1, en.Occurrences)
		}
	}
	return entries, decisions
}

// TestAuditFloodIsFolded (issue 13 finding 10): 300 bad-token requests, or one batch with 1000
// refused entries, no longer add an entry each: the first refusal is written at once, the
// rest as one entry with their count once the window ends (or the server stops), and the
// count is what an auditor sees in AuditEvent.
func TestAuditFloodIsFolded(t *testing.T) {
	tests := []struct {
		name  string
		typ   string // entry type of the refusals
		flood func(t *testing.T, e *env) int
	}{
		{"300 bad tokens", "authn", func(t *testing.T, e *env) int {
			for range 300 {
				if r := e.bearer("GET", "/fhir/Observation?patient=pat-1", "forged", nil, ""); r.status != 401 {
					t.Fatalf("forged token: %d", r.status)
				}
			}
			return 300
		}},
		{"a batch of 1000 refused entries", "rest", func(t *testing.T, e *env) int {
			cert := e.enroll("dev-f", e.addDevice("dev-f", "pat-f"))
			entries := make([]any, 1000)
			for i := range entries {
				entries[i] = map[string]any{"resource": map[string]any{"resourceType": "Observation"},
					"request": map[string]any{"method": "POST", "url": "Observation"}}
			}
			bundle := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": entries}
			r := e.do(e.client(cert), "POST", "/fhir", "application/fhir+json", mustJSON(t, bundle))
			if r.status != 200 {
				t.Fatalf("batch: %d %s", r.status, r.body)
			}
			return 1000
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustEnvWith(t, func(c *httpapi.Config) { c.MaxBodyBytes = 1 << 20; c.RatePerCaller, c.BurstPerCaller = 1e6, 1e6 })
			before, _ := refusals(t, e, tt.typ)
			n := tt.flood(t, e)
			if got, _ := refusals(t, e, tt.typ); got-before != 1 {
				t.Errorf("%d refusals added %d entries at once, want 1 (the first)", n, got-before)
			}
			if err := e.audit.Close(context.Background()); err != nil { // as when the server stops
				t.Fatal(err)
			}
			got, decisions := refusals(t, e, tt.typ)
			if got-before != 2 || decisions < n {
				t.Errorf("after the window: %d entries recording %d decisions, want 2 recording at least %d", got-before, decisions, n)
			}
			// An auditor sees the count.
			auditor := e.token("aud", e.addSiteClient("aud", vitalgate.RoleAuditor, vitalgate.AllSites), "") // deployment-wide: it sees the entries of no site too
			r := e.bearer("GET", "/fhir/AuditEvent?outcome=4", auditor, nil, "")
			if r.status != 200 || !strings.Contains(string(r.body), `"type":"occurrences"`) {
				t.Fatalf("AuditEvent search for refusals: %d %s", r.status, r.body)
			}
		})
	}
}

// failAudit makes the database refuse audit entries whose encoding contains marker, the way
// a full disk would refuse them, with a trigger (named name) added through another
// connection.
func failAudit(t *testing.T, e *env, name, marker string) {
	t.Helper()
	db, err := sql.Open("sqlite", e.db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER ` + name + ` BEFORE INSERT ON audit_log
		WHEN instr(CAST(NEW.data AS TEXT), '` + marker + `') > 0
		BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
}

// TestReadsFailWhenNotAudited (issue 13 finding 12): a denied Device read leaves an entry;
// Device reads and AuditEvent searches, like Observation reads, answer only once their entry
// is written.
func TestReadsFailWhenNotAudited(t *testing.T) {
	e := MustEnv(t)
	e.addDevice("dev-a", "pat-a")
	ehr := e.token("ehr", e.addClient("ehr", vitalgate.RoleEHRSystem), "")
	outTeam := e.token("dr-out", e.addClient("dr-out", vitalgate.RoleClinician, "someone-else"), "")
	auditor := e.token("aud", e.addSiteClient("aud", vitalgate.RoleAuditor, vitalgate.AllSites), "") // deployment-wide: it sees the entries of no site too

	t.Run("denied device read is audited", func(t *testing.T) {
		if r := e.bearer("GET", "/fhir/Device/dev-a", outTeam, nil, ""); r.status != 403 {
			t.Fatalf("device read outside the care team: %d %s", r.status, r.body)
		}
		found := false
		for _, en := range auditEntries(t, e) {
			if en.AgentID == "dr-out" && en.Subtype == "read" && en.Outcome == audit.OutcomeMinorFailure &&
				len(en.Resources) == 1 && en.Resources[0] == "Device/dev-a" && en.PatientIndex != "" {
				found = true
			}
		}
		if !found {
			t.Error("the denied Device read left no audit entry")
		}
	})

	failAudit(t, e, "test_fail_reads", `"subtype":"read"`)
	failAudit(t, e, "test_fail_searches", `"resources":["AuditEvent"]`)
	tests := []struct {
		name, path, tok string
	}{
		{"device read", "/fhir/Device/dev-a", ehr},
		{"AuditEvent search", "/fhir/AuditEvent?action=R", auditor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.bearer("GET", tt.path, tt.tok, nil, "")
			if r.status != 503 || strings.Contains(string(r.body), `"resourceType":"Device"`) || strings.Contains(string(r.body), `"resourceType":"Bundle"`) {
				t.Fatalf("%s with the audit log refusing its entry: %d %s, want 503 and no data", tt.name, r.status, r.body)
			}
		})
	}
}
