package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/vitalgate/vitalgate"
)

// withIdentifiers returns r carrying the identifier indexes.
func withIdentifiers(r vitalgate.SealedResource, idents ...string) vitalgate.SealedResource {
	for _, x := range idents {
		r.IdentifierIndexes = append(r.IdentifierIndexes, []byte(x))
	}
	return r
}

// ids returns the ids of the resources f selects, in the order the store gives them.
func ids(t *testing.T, st vitalgate.Store, f vitalgate.ResourceFilter) []string {
	t.Helper()
	var out []string
	must(t, "Resources", st.Resources(ctxT(t), f, func(r vitalgate.SealedResource) error {
		out = append(out, r.ID)
		return nil
	}))
	return out
}

// testIdentifierLookup checks that a search by identifier index finds exactly the resources
// carrying it, scoped to the patient, whatever else the patient has: an identifier another
// patient's resource carries, or the same bytes as a code index, are not matches.
func (s *suite) testIdentifierLookup(t *testing.T) {
	st := s.store(t)
	var rs []vitalgate.SealedResource
	// A patient with a history: many observations, each with its own identifier.
	for i := range 200 {
		rs = append(rs, withIdentifiers(resource("Observation", fmt.Sprintf("hist-%03d", i), "p-big", at(i), at(i), "hr"),
			fmt.Sprintf("msg-1/%d", i)))
	}
	rs = append(rs,
		// The same identifier on two patients' observations (two devices may reuse one).
		withIdentifiers(resource("Observation", "obs-a", "p-big", at(0), at(0), "hr"), "ctl-9/1", "ctl-9/1-alt"),
		withIdentifiers(resource("Observation", "obs-b", "p-small", at(0), at(0), "hr"), "ctl-9/1"),
		// A resend stored twice before resend detection: both are found, in id order.
		withIdentifiers(resource("Observation", "obs-d2", "p-small", at(0), at(0), "spo2"), "ctl-7/1"),
		withIdentifiers(resource("Observation", "obs-d1", "p-small", at(0), at(0), "hr"), "ctl-7/1"),
		// A code index with the bytes of an identifier index is not an identifier.
		resource("Observation", "obs-code", "p-small", at(0), at(0), "ctl-5/1"),
		// A Patient and an Observation may share an identifier index.
		withIdentifiers(resource("Patient", "pat-1", "p-small", at(0), at(0)), "ctl-9/1"),
	)
	load(t, st, rs)

	tests := []struct {
		name string
		f    vitalgate.ResourceFilter
		want []string
	}{
		{"one of many", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-big"), IdentifierIndex: []byte("msg-1/137")},
			[]string{"hist-137"}},
		{"scoped to the patient", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-big"), IdentifierIndex: []byte("ctl-9/1")},
			[]string{"obs-a"}},
		{"other patient", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-small"), IdentifierIndex: []byte("ctl-9/1")},
			[]string{"obs-b"}},
		{"second identifier", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-big"), IdentifierIndex: []byte("ctl-9/1-alt")},
			[]string{"obs-a"}},
		{"patient without it", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-none"), IdentifierIndex: []byte("ctl-9/1")},
			nil},
		{"another patient's identifier", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-small"), IdentifierIndex: []byte("msg-1/3")},
			nil},
		{"several in id order", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-small"), IdentifierIndex: []byte("ctl-7/1")},
			[]string{"obs-d1", "obs-d2"}},
		{"limit", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-small"), IdentifierIndex: []byte("ctl-7/1"), Limit: 1},
			[]string{"obs-d1"}},
		{"after", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-small"), IdentifierIndex: []byte("ctl-7/1"), After: "obs-d1"},
			[]string{"obs-d2"}},
		{"with a code", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-small"), IdentifierIndex: []byte("ctl-7/1"), CodeIndex: []byte("spo2")},
			[]string{"obs-d2"}},
		{"since", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-big"), IdentifierIndex: []byte("msg-1/10"), Since: at(11)},
			nil},
		{"a code is not an identifier", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-small"), IdentifierIndex: []byte("ctl-5/1")},
			nil},
		{"an identifier is not a code", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-small"), CodeIndex: []byte("ctl-9/1")},
			nil},
		{"other type", vitalgate.ResourceFilter{Type: "Patient", PatientIndex: []byte("p-small"), IdentifierIndex: []byte("ctl-9/1")},
			[]string{"pat-1"}},
		{"patient without a patient index", vitalgate.ResourceFilter{Type: "Patient", IdentifierIndex: []byte("ctl-9/1")},
			[]string{"pat-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(t, st, tt.f); !slices.Equal(got, tt.want) {
				t.Errorf("Resources(%+v) = %q, want %q", tt.f, got, tt.want)
			}
		})
	}

	got, err := st.Resource(ctxT(t), "Observation", "obs-a")
	must(t, "Resource", err)
	checkResource(t, got, rs[200])

	invalid := []struct {
		name string
		f    vitalgate.ResourceFilter
	}{
		{"no type", vitalgate.ResourceFilter{PatientIndex: []byte("p-big"), IdentifierIndex: []byte("ctl-9/1")}},
		{"no patient", vitalgate.ResourceFilter{Type: "Observation", IdentifierIndex: []byte("ctl-9/1")}},
		{"by date", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p-big"), IdentifierIndex: []byte("ctl-9/1"), ByEffective: true}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			err := st.Resources(ctxT(t), tt.f, func(vitalgate.SealedResource) error { return nil })
			wantCode(t, "Resources", err, vitalgate.EINVALID)
		})
	}
}

// testPatientIdentifierUnique checks that a Patient identifier belongs to one Patient: a
// second Patient with it is refused with ECONFLICT, and nothing of its batch is stored.
func (s *suite) testPatientIdentifierUnique(t *testing.T) {
	st := s.store(t)
	must(t, "first Patient", st.CreateResources(ctxT(t), []vitalgate.SealedResource{
		withIdentifiers(resource("Patient", "pat-1", "p1", at(0), at(0)), "mrn|1", "ssn|9", "mrn|1")}))
	tests := []struct {
		name string
		rs   []vitalgate.SealedResource
		code string
	}{
		{"same identifier", []vitalgate.SealedResource{
			withIdentifiers(resource("Patient", "pat-2", "p2", at(0), at(0)), "mrn|1")}, vitalgate.ECONFLICT},
		{"one of its identifiers", []vitalgate.SealedResource{
			withIdentifiers(resource("Patient", "pat-3", "p3", at(0), at(0)), "mrn|3", "ssn|9")}, vitalgate.ECONFLICT},
		{"two in one batch", []vitalgate.SealedResource{
			resource("Observation", "obs-x", "p4", at(0), at(0)),
			withIdentifiers(resource("Patient", "pat-4", "p4", at(0), at(0)), "mrn|4"),
			withIdentifiers(resource("Patient", "pat-5", "p5", at(0), at(0)), "mrn|4")}, vitalgate.ECONFLICT},
		{"another identifier", []vitalgate.SealedResource{
			withIdentifiers(resource("Patient", "pat-6", "p6", at(0), at(0)), "mrn|6")}, ""},
		{"an observation may carry it", []vitalgate.SealedResource{
			withIdentifiers(resource("Observation", "obs-1", "p1", at(0), at(0)), "mrn|1")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, "CreateResources", st.CreateResources(ctxT(t), tt.rs), tt.code)
			for _, r := range tt.rs {
				_, err := st.Resource(ctxT(t), r.Type, r.ID)
				if tt.code != "" {
					wantCode(t, r.ID+" after a refused batch", err, vitalgate.ENOTFOUND)
				} else {
					must(t, r.ID, err)
				}
			}
		})
	}
	for _, tt := range []struct{ ident, want string }{{"mrn|1", "pat-1"}, {"ssn|9", "pat-1"}, {"mrn|4", ""}, {"mrn|6", "pat-6"}} {
		got := ids(t, st, vitalgate.ResourceFilter{Type: "Patient", IdentifierIndex: []byte(tt.ident)})
		if want := []string{tt.want}; tt.want == "" && len(got) != 0 || tt.want != "" && !slices.Equal(got, want) {
			t.Errorf("Patients with %s = %q, want %q", tt.ident, got, tt.want)
		}
	}
}

// testPatientIdentifierConcurrent checks that of concurrent creates of Patients with one
// identifier exactly one succeeds and every other gets ECONFLICT (the review created twelve
// Patients with one MRN this way).
func (s *suite) testPatientIdentifierConcurrent(t *testing.T) {
	const creators = 12
	st := s.store(t)
	errs := make([]error, creators)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range creators {
		wg.Go(func() {
			<-start
			id := fmt.Sprintf("pat-%02d", i)
			errs[i] = st.CreateResources(ctxT(t), []vitalgate.SealedResource{
				withIdentifiers(resource("Patient", id, id, at(0), at(0)), "mrn|12345")})
		})
	}
	close(start)
	wg.Wait()
	winner := ""
	for i, err := range errs {
		switch vitalgate.ErrorCode(err) {
		case "":
			if winner != "" {
				t.Errorf("pat-%02d and %s were both created with one identifier", i, winner)
			}
			winner = fmt.Sprintf("pat-%02d", i)
		case vitalgate.ECONFLICT:
		default:
			t.Errorf("pat-%02d: %v, want success or ECONFLICT", i, err)
		}
	}
	if winner == "" {
		t.Fatal("no Patient was created")
	}
	if got := ids(t, st, vitalgate.ResourceFilter{Type: "Patient"}); !slices.Equal(got, []string{winner}) {
		t.Errorf("stored Patients %q, want only %s", got, winner)
	}
	if got := ids(t, st, vitalgate.ResourceFilter{Type: "Patient", IdentifierIndex: []byte("mrn|12345")}); !slices.Equal(got, []string{winner}) {
		t.Errorf("Patients with the identifier %q, want %s", got, winner)
	}
}
