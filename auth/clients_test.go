package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
)

// TestClientAdmin (finding 8): disabling, rotating and re-scoping a client hold from its
// next token request, each with its audit entry; scopes beyond the role are refused.
func TestClientAdmin(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	admin := &auth.ClientAdmin{Store: e.store, Operator: "alice", Hash: fast, Now: func() time.Time { return e.now }}
	ehr := e.addClient(vitalgate.Client{ID: "ehr", Role: vitalgate.RoleEHRSystem})
	doc := e.addClient(vitalgate.Client{ID: "doc", Role: vitalgate.RoleClinician})
	e.addClient(vitalgate.Client{ID: "gone", Role: vitalgate.RoleAuditor})

	lastEntry := func(t *testing.T, from uint64, subtype string) {
		t.Helper()
		es := e.entries(from)
		if len(es) != 1 || es[0].Type != "admin" || es[0].Subtype != subtype || es[0].AgentID != "alice" {
			t.Fatalf("audit entries %+v, want one admin/%s by alice", es, subtype)
		}
	}

	t.Run("rotate-secret", func(t *testing.T) {
		from := e.size()
		secret, err := admin.RotateSecret(ctx, "ehr")
		if err != nil || len(secret) != 43 || secret == ehr {
			t.Fatalf("RotateSecret = %q, %v", secret, err)
		}
		lastEntry(t, from, "client-rotate-secret")
		if _, err := e.svc.IssueToken(ctx, basic("ehr", ehr)); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
			t.Fatalf("the old secret: %v, want EUNAUTHORIZED", err)
		}
		if _, err := e.svc.IssueToken(ctx, basic("ehr", secret)); err != nil {
			t.Fatalf("the new secret: %v", err)
		}
		ehr = secret
	})
	t.Run("set-scopes", func(t *testing.T) {
		if err := admin.SetScopes(ctx, "ehr", []string{"system/Observation.cruds"}); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
			t.Fatalf("beyond the role: %v, want EFORBIDDEN", err)
		}
		from := e.size()
		if err := admin.SetScopes(ctx, "ehr", []string{"system/Observation.rs"}); err != nil {
			t.Fatal(err)
		}
		lastEntry(t, from, "client-set-scopes")
		tok, err := e.svc.IssueToken(ctx, basic("ehr", ehr))
		if err != nil || strings.Join(tok.Scopes, " ") != "system/Observation.rs" {
			t.Fatalf("token after re-scoping: %v %v", tok.Scopes, err)
		}
		r := basic("ehr", ehr)
		r.Scope = "system/Patient.rs"
		if _, err := e.svc.IssueToken(ctx, r); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
			t.Fatalf("a scope removed: %v, want EFORBIDDEN", err)
		}
	})
	t.Run("set-patients", func(t *testing.T) {
		if err := admin.SetPatients(ctx, "ehr", [][]byte{{1}}); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
			t.Fatalf("care team of a system client: %v, want EINVALID", err)
		}
		from := e.size()
		if err := admin.SetPatients(ctx, "doc", [][]byte{{1}, {2}}); err != nil {
			t.Fatal(err)
		}
		lastEntry(t, from, "client-set-patients")
		c, err := e.store.Client(ctx, "doc")
		if err != nil || len(c.PatientIndexes) != 2 {
			t.Fatalf("care team %v, %v", c.PatientIndexes, err)
		}
	})
	t.Run("disable", func(t *testing.T) {
		from := e.size()
		if err := admin.Disable(ctx, "doc"); err != nil {
			t.Fatal(err)
		}
		lastEntry(t, from, "client-disable")
		if _, err := e.svc.IssueToken(ctx, basic("doc", doc)); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
			t.Fatalf("a disabled client: %v, want EUNAUTHORIZED", err)
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		if err := admin.Disable(ctx, "nobody"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
			t.Fatalf("Disable(nobody) = %v, want ENOTFOUND", err)
		}
	})
	t.Run("list", func(t *testing.T) {
		cs, err := admin.List(ctx)
		if err != nil || len(cs) != 3 || cs[0].ID != "doc" || !cs[0].Disabled {
			t.Fatalf("List = %+v, %v", cs, err)
		}
	})

	t.Run("add", func(t *testing.T) {
		from := e.size()
		secret, err := admin.Add(ctx, vitalgate.Client{ID: "new-ehr", Role: vitalgate.RoleEHRSystem})
		if err != nil || len(secret) != 43 {
			t.Fatalf("Add = %q, %v", secret, err)
		}
		lastEntry(t, from, "client-add")
		if _, err := e.svc.IssueToken(ctx, basic("new-ehr", secret)); err != nil {
			t.Fatalf("the new client's secret: %v", err)
		}
		from = e.size()
		for name, c := range map[string]vitalgate.Client{
			"taken id":           {ID: "new-ehr", Role: vitalgate.RoleEHRSystem},
			"no such role":       {ID: "x", Role: "root"},
			"scope beyond role":  {ID: "y", Role: vitalgate.RoleAuditor, Scopes: []string{"system/Observation.rs"}},
			"device is not role": {ID: "z", Role: vitalgate.RoleDevice},
		} {
			if _, err := admin.Add(ctx, c); err == nil {
				t.Errorf("%s: Add accepted %+v", name, c)
			}
		}
		if n := len(e.entries(from)); n != 0 {
			t.Errorf("refused additions left %d audit entries", n)
		}
	})
}
