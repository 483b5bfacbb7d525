package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
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
	auditor := e.token("aud", e.addClient("aud", vitalgate.RoleAuditor), "")
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
