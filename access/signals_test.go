package access_test

import (
	"context"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/detect"
)

type sink []detect.Signal

func (s *sink) Emit(sig detect.Signal) { *s = append(*s, sig) }

// TestRefusalSignals: an act refused to a client's role is a scope-escalation signal naming
// the client, its address and the permission; an allowed act or a device's refusal is none.
func TestRefusalSignals(t *testing.T) {
	var sigs sink
	s := &access.Service{Signals: &sigs}
	ehr := vitalgate.Principal{Kind: "client", ID: "ehr-1", Role: vitalgate.RoleEHRSystem, RemoteIP: "10.9.8.7", Site: vitalgate.DefaultSite}
	device := vitalgate.Principal{Kind: "device", ID: "dev-1", Role: vitalgate.RoleDevice}
	_ = s.Authorize(context.Background(), ehr, access.PermObservationRead, "GET /fhir/Observation/{id}")
	_ = s.Authorize(context.Background(), ehr, access.PermAuditRead, "GET /fhir/AuditEvent")
	_ = s.Authorize(context.Background(), device, access.PermAuditRead, "GET /fhir/AuditEvent")
	if len(sigs) != 1 || sigs[0].Kind != detect.KindScopeEscalation || sigs[0].Client != "ehr-1" || sigs[0].Source != "10.9.8.7" ||
		sigs[0].Reason != "not permitted: audit:read" {
		t.Fatalf("signals %+v", sigs)
	}
}
