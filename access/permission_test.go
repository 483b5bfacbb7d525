package access_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/sqlite"
)

func TestPermits(t *testing.T) {
	device := vitalgate.Principal{Kind: "device", ID: "d", Role: vitalgate.RoleDevice}
	auditor := vitalgate.Principal{Kind: "client", ID: "a", Role: vitalgate.RoleAuditor}
	clin := vitalgate.Principal{Kind: "client", ID: "c", Role: vitalgate.RoleClinician}
	enrollee := vitalgate.Principal{Kind: access.KindEnrollee, ID: "d"}
	candidate := vitalgate.Principal{Kind: access.KindClientCandidate}
	anon := vitalgate.Principal{Kind: access.KindAnonymous}
	// An enrollee claiming a role gets only what its kind grants.
	enrolleeAsAdmin := vitalgate.Principal{Kind: access.KindEnrollee, Role: vitalgate.RoleAdmin}
	tests := []struct {
		name string
		p    vitalgate.Principal
		perm access.Permission
		want bool
	}{
		{"public for everyone", anon, access.PermPublic, true},
		{"anonymous nothing else", anon, access.PermObservationRead, false},
		{"device creates observations", device, access.PermObservationCreate, true},
		{"device reads nothing", device, access.PermObservationRead, false},
		{"device does not assign", device, access.PermDeviceAssign, false},
		{"device asks for its update offer", device, access.PermUpdateOffer, true},
		{"device reports its update", device, access.PermUpdateReport, true},
		{"clinician reports no device update", clin, access.PermUpdateReport, false},
		{"auditor reads audit", auditor, access.PermAuditRead, true},
		{"auditor reads no patient data", auditor, access.PermObservationRead, false},
		{"clinician reads observations", clin, access.PermObservationRead, true},
		{"clinician creates no patient", clin, access.PermPatientCreate, false},
		{"enrollee enrolls", enrollee, access.PermEnroll, true},
		{"enrollee does not reenroll", enrollee, access.PermReenroll, false},
		{"enrollee's claimed role is ignored", enrolleeAsAdmin, access.PermPatientCreate, false},
		{"client candidate asks for tokens", candidate, access.PermToken, true},
		{"client candidate reads nothing", candidate, access.PermPatientRead, false},
		{"unknown role holds nothing", vitalgate.Principal{Kind: "client", Role: "root"}, access.PermAuditRead, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := access.Permits(tt.p, tt.perm); got != tt.want {
				t.Errorf("Permits(%+v, %s) = %v, want %v", tt.p, tt.perm, got, tt.want)
			}
		})
	}
}

// TestAuthorizeAuditsRefusals checks that a refusal leaves an entry naming the endpoint and
// the permission, that a grant leaves none, and that a refusal which cannot be audited is
// still a refusal.
func TestAuthorizeAuditsRefusals(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner("test", ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	s := &access.Service{Store: store, Audit: audit.NewLog(store, signer, "test", "n", nil)}
	device := vitalgate.Principal{Kind: "device", ID: "dev-1", Role: vitalgate.RoleDevice}

	if err := s.Authorize(ctx, device, access.PermObservationCreate, "POST /fhir/Observation"); err != nil {
		t.Fatalf("granted permission refused: %v", err)
	}
	err = s.Authorize(ctx, device, access.PermAuditRead, "GET /fhir/AuditEvent")
	if vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Fatalf("refusal = %v, want EFORBIDDEN", err)
	}
	var entries []string
	if err := store.AuditEntries(ctx, 0, 100, func(r vitalgate.AuditRecord) error {
		entries = append(entries, string(r.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !strings.Contains(entries[0], "GET /fhir/AuditEvent: not permitted") ||
		!strings.Contains(entries[0], string(access.PermAuditRead)) || !strings.Contains(entries[0], "dev-1") {
		t.Fatalf("audit entries = %q, want one refusal naming endpoint, permission and device", entries)
	}

	_ = store.Close() // a new refusal (not one folded into the first) cannot be audited now
	err = s.Authorize(ctx, device, access.PermDeviceAssign, "PUT /admin/devices/{id}")
	if c := vitalgate.ErrorCode(err); c != vitalgate.EUNAVAILABLE {
		t.Fatalf("unaudited refusal = %v (%s), want EUNAVAILABLE", err, c)
	}
	if err := s.Authorize(ctx, device, access.PermObservationCreate, "POST /fhir/Observation"); err != nil {
		t.Fatalf("grant must not need the audit log: %v", err)
	}
}
