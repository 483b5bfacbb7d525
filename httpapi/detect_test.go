package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/detect"
)

// TestDetectedIssue: an alert reads as a FHIR DetectedIssue (Vitalgate code systems, the
// Device implicated, severity, the evidence window and facts), alone and in a search.
func TestDetectedIssue(t *testing.T) {
	e := MustEnv(t)
	auditor := e.token("auditor", e.addClient("auditor", vitalgate.RoleAuditor), "")
	var id string
	for i := range 5 {
		as, err := e.detect.Observe(context.Background(), detect.Signal{Kind: detect.KindCertRefused,
			At: e.clock.Now().Add(time.Duration(i) * time.Second), Device: "dev-9", Site: vitalgate.DefaultSite, Source: "198.51.100.7",
			Reason: "client certificate has been revoked"})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			id = a.ID
		}
	}
	r := e.bearer("GET", "/fhir/DetectedIssue/"+id, auditor, nil, "")
	if r.status != 200 {
		t.Fatalf("read: %d %s", r.status, r.body)
	}
	var di struct {
		ResourceType, ID, Status, Severity string
		Code                               struct {
			Coding []struct{ System, Code string }
		}
		Implicated       []struct{ Reference string }
		IdentifiedPeriod struct{ Start, End string }
		Evidence         []struct {
			Code []struct {
				Coding []struct{ Code string }
				Text   string
			}
		}
	}
	if err := json.Unmarshal(r.body, &di); err != nil {
		t.Fatal(err)
	}
	if di.ResourceType != "DetectedIssue" || di.ID != id || di.Severity != "high" || di.Status != "preliminary" ||
		len(di.Implicated) != 1 || di.Implicated[0].Reference != "Device/dev-9" || di.IdentifiedPeriod.Start == "" ||
		len(di.Code.Coding) != 2 || di.Code.Coding[1].System != detect.CodeSystemRule || di.Code.Coding[1].Code != "revoked-certificate-retry" ||
		len(di.Evidence) != 1 || len(di.Evidence[0].Code) == 0 {
		t.Fatalf("DetectedIssue %s", r.body)
	}
	cases := []struct {
		name, query string
		status      int
		has         bool
	}{
		{"all", "", 200, true},
		{"by device", "?implicated=Device/dev-9", 200, true},
		{"another device", "?implicated=Device/dev-1", 200, false},
		{"resolved", "?status=resolved", 200, false},
		{"bad status", "?status=closed", 400, false},
		{"unknown parameter", "?patient=x", 400, false},
	}
	for _, c := range cases {
		r := e.bearer("GET", "/fhir/DetectedIssue"+c.query, auditor, nil, "")
		if r.status != c.status || (c.status == 200 && strings.Contains(string(r.body), id) != c.has) {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
	}
	if r := e.bearer("GET", "/fhir/DetectedIssue/nope", auditor, nil, ""); r.status != 404 {
		t.Errorf("unknown: %d", r.status)
	}
}
