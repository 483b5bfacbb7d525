package storetest

import (
	"bytes"
	"slices"
	"testing"

	"github.com/vitalgate/vitalgate"
)

// testClientUpdate: UpdateClient replaces what an operator may change (secret, scopes, care
// team, disabled flag), keeps id and creation time, appends its audit entries atomically,
// and refuses an unknown id without appending anything; Clients lists every client by id.
func (s *suite) testClientUpdate(t *testing.T) {
	st := s.store(t)
	orig := vitalgate.Client{ID: "doc", Role: vitalgate.RoleClinician, SecretHash: "$argon2id$old", // #nosec G101 -- test fixture: a placeholder, not a hash of any secret
		Scopes: []string{"user/Observation.rs"}, PatientIndexes: [][]byte{{1}, {2}}, CreatedAt: at(3)}
	must(t, "CreateClient", st.CreateClient(ctxT(t), orig))
	must(t, "CreateClient", st.CreateClient(ctxT(t), vitalgate.Client{ID: "ehr", Role: vitalgate.RoleEHRSystem, CreatedAt: at(4)}))
	tests := []struct {
		name string
		mut  func(c *vitalgate.Client)
	}{
		{"disable", func(c *vitalgate.Client) { c.Disabled = true }},
		{"enable", func(c *vitalgate.Client) { c.Disabled = false }},
		{"rotate secret", func(c *vitalgate.Client) { c.SecretHash = "$argon2id$new" }}, // #nosec G101 -- test fixture
		{"re-scope", func(c *vitalgate.Client) { c.Scopes = []string{"user/Patient.rs", "user/Observation.r"} }},
		{"scopes back to the role", func(c *vitalgate.Client) { c.Scopes = nil }},
		{"new care team", func(c *vitalgate.Client) { c.PatientIndexes = [][]byte{{3}} }},
		{"no care team", func(c *vitalgate.Client) { c.PatientIndexes = nil }},
		{"keys", func(c *vitalgate.Client) { c.JWKS = []byte(`{"keys":[]}`) }},
	}
	want := orig
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.mut(&want)
			sent := want
			sent.CreatedAt = at(99) // ignored
			size, err := st.AuditSize(ctxT(t))
			must(t, "AuditSize", err)
			must(t, "UpdateClient", st.UpdateClient(ctxT(t), sent, []byte(`{"e":"`+tt.name+`"}`)))
			got, err := st.Client(ctxT(t), "doc")
			must(t, "Client", err)
			if got.Role != want.Role || got.SecretHash != want.SecretHash || got.Disabled != want.Disabled ||
				!slices.Equal(got.Scopes, want.Scopes) || !bytes.Equal(got.JWKS, want.JWKS) ||
				!slices.EqualFunc(got.PatientIndexes, want.PatientIndexes, bytes.Equal) {
				t.Fatalf("Client = %+v, want %+v", got, want)
			}
			checkTime(t, "CreatedAt", got.CreatedAt, orig.CreatedAt)
			after, err := st.AuditSize(ctxT(t))
			must(t, "AuditSize", err)
			if after != size+1 {
				t.Fatalf("audit size %d after the update, want %d", after, size+1)
			}
		})
	}
	t.Run("unknown id", func(t *testing.T) {
		size, err := st.AuditSize(ctxT(t))
		must(t, "AuditSize", err)
		wantCode(t, "UpdateClient", st.UpdateClient(ctxT(t), vitalgate.Client{ID: "nobody", Role: vitalgate.RoleAdmin}, []byte(`{"e":"x"}`)), vitalgate.ENOTFOUND)
		after, err := st.AuditSize(ctxT(t))
		must(t, "AuditSize", err)
		if after != size {
			t.Fatalf("a refused update appended %d audit entries", after-size)
		}
	})
	t.Run("list", func(t *testing.T) {
		cs, err := st.Clients(ctxT(t))
		must(t, "Clients", err)
		if len(cs) != 2 || cs[0].ID != "doc" || cs[1].ID != "ehr" || cs[1].Role != vitalgate.RoleEHRSystem {
			t.Fatalf("Clients = %+v, want doc and ehr", cs)
		}
	})
}
