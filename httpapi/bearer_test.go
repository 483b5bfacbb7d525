package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
)

// TestDisabledClientRefusedWithinBound: a token issued before its client was disabled stops
// working within the staleness bound (2 s), on every request, not only at the next token
// request (issue 12: one mechanism for revocation, reassignment and disabled clients).
func TestDisabledClientRefusedWithinBound(t *testing.T) {
	e := MustEnv(t)
	seed(t, e, 1)
	tok := e.token("ehr", e.addClient("ehr", vitalgate.RoleEHRSystem), "")
	if r := e.bearer("GET", "/fhir/Observation?patient=pat-1", tok, nil, ""); r.status != 200 {
		t.Fatalf("before: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	c, err := e.store.Client(ctx, "ehr")
	if err != nil {
		t.Fatal(err)
	}
	c.Disabled = true
	if err := e.store.UpdateClient(ctx, c); err != nil { // as `client disable` on another node
		t.Fatal(err)
	}
	e.clock.Advance(auth.DefaultClientStaleness + time.Millisecond)
	r := e.bearer("GET", "/fhir/Observation?patient=pat-1", tok, nil, "")
	if r.status != 401 || !strings.Contains(string(r.body), "disabled") {
		t.Fatalf("after the bound: %d %s, want 401 naming the disabled client", r.status, r.body)
	}
}
