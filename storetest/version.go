package storetest

import (
	"testing"

	"github.com/vitalgate/vitalgate"
)

// testNewVersion: a resource of version n+1 replaces the stored version n with its code and
// identifier indexes, all or none with the rest of its batch; a second writer of the same
// version, or a version that skips one, gets ECONFLICT and changes nothing.
func (s *suite) testNewVersion(t *testing.T) {
	st := s.store(t)
	v1 := resource("Observation", "lab-1", "p1", at(0), at(0), "old-code")
	v1.IdentifierIndexes = [][]byte{[]byte("key-1")}
	must(t, "CreateResources v1", st.CreateResources(ctxT(t), []vitalgate.SealedResource{v1}))

	v2 := resource("Observation", "lab-1", "p1", at(1), at(1), "new-code")
	v2.Version, v2.Body, v2.IdentifierIndexes = 2, []byte("sealed:v2"), [][]byte{[]byte("key-1")}
	other := resource("Observation", "lab-2", "p1", at(1), at(1))
	must(t, "CreateResources v2", st.CreateResources(ctxT(t), []vitalgate.SealedResource{v2, other}))
	got, err := st.Resource(ctxT(t), "Observation", "lab-1")
	must(t, "Resource", err)
	checkResource(t, got, v2)

	count := func(f vitalgate.ResourceFilter) int {
		n := 0
		must(t, "Resources", st.Resources(ctxT(t), f, func(vitalgate.SealedResource) error { n++; return nil }))
		return n
	}
	if n := count(vitalgate.ResourceFilter{CodeIndex: []byte("old-code")}); n != 0 {
		t.Errorf("the replaced version's code still matches %d resources", n)
	}
	if n := count(vitalgate.ResourceFilter{Type: "Observation", PatientIndex: []byte("p1"), IdentifierIndex: []byte("key-1")}); n != 1 {
		t.Errorf("identifier key-1 matches %d resources after a new version, want 1", n)
	}

	tests := []struct {
		name    string
		version int
	}{
		{"same version again", 2},
		{"a version skipped", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resource("Observation", "lab-1", "p1", at(2), at(2), "stale-code")
			r.Version, r.Body = tt.version, []byte("sealed:stale")
			fresh := resource("Observation", "lab-3-"+tt.name, "p1", at(2), at(2))
			wantCode(t, "CreateResources", st.CreateResources(ctxT(t), []vitalgate.SealedResource{fresh, r}), vitalgate.ECONFLICT)
			got, err := st.Resource(ctxT(t), "Observation", "lab-1")
			must(t, "Resource", err)
			checkResource(t, got, v2)
			_, err = st.Resource(ctxT(t), "Observation", fresh.ID)
			wantCode(t, "Resource of the failed batch", err, vitalgate.ENOTFOUND)
		})
	}
}
