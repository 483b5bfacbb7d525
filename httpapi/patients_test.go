package httpapi_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/vitalgate/vitalgate"
)

// TestConcurrentPatientCreates sends twelve creates of Patients with one MRN at once (the
// security review got twelve 201s): exactly one is created, the others get 409 with an
// OperationOutcome naming Patient.identifier, and the identifier finds one Patient.
func TestConcurrentPatientCreates(t *testing.T) {
	const creators = 12
	e := MustEnv(t)
	admin := e.token("admin", e.addClient("admin", vitalgate.RoleAdmin), "")
	patient := []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.36.146.595.217.0.1","value":"MRN-777"}]}`)
	results := make([]result, creators)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range creators {
		wg.Go(func() {
			<-start
			results[i] = e.bearer("POST", "/fhir/Patient", admin, patient, "application/fhir+json")
		})
	}
	close(start)
	wg.Wait()
	created, conflicts := 0, 0
	for i, r := range results {
		switch r.status {
		case 201:
			created++
		case 409:
			conflicts++
			var oo outcome
			if err := json.Unmarshal(r.body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 ||
				!strings.Contains(strings.Join(oo.Issue[0].Expression, ","), "Patient.identifier") {
				t.Errorf("create %d: 409 with %s, want an OperationOutcome naming Patient.identifier", i, r.body)
			}
		default:
			t.Errorf("create %d: status %d (%v) %s, want 201 or 409", i, r.status, r.err, r.body)
		}
	}
	if created != 1 || conflicts != creators-1 {
		t.Errorf("%d created, %d conflicts; want 1 and %d", created, conflicts, creators-1)
	}

	ehr := e.token("ehr", e.addClient("ehr", vitalgate.RoleEHRSystem), "")
	r := e.bearer("GET", "/fhir/Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|MRN-777", ehr, nil, "")
	var bundle struct{ Entry []json.RawMessage }
	if r.status != 200 || json.Unmarshal(r.body, &bundle) != nil || len(bundle.Entry) != 1 {
		t.Errorf("search by the identifier: %d %s, want one Patient", r.status, r.body)
	}
}
