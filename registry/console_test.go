package registry_test

import (
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
)

// TestConsoleUsers: a person of the console lists the devices of their own site only, if an
// admin, and revokes one only after re-authenticating.
func TestConsoleUsers(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	e.add("dev-1", "pat-1")
	user := func(role vitalgate.Role, site string, again bool) vitalgate.Principal {
		return vitalgate.Principal{Kind: "user", ID: "ada", Role: role, Site: site, Scopes: auth.RoleScopes[role], Reauthenticated: again}
	}
	tests := []struct {
		name   string
		p      vitalgate.Principal
		rows   int    // devices listed
		list   string // error code of the listing
		revoke string // error code of revoking dev-1
	}{
		{"clinician", user(vitalgate.RoleClinician, vitalgate.DefaultSite, true), 0, vitalgate.EFORBIDDEN, vitalgate.EFORBIDDEN},
		{"admin of another site", user(vitalgate.RoleAdmin, "b", true), 0, "", vitalgate.ENOTFOUND},
		{"admin, not re-authenticated", user(vitalgate.RoleAdmin, vitalgate.DefaultSite, false), 1, "", vitalgate.EFORBIDDEN},
		{"admin, re-authenticated", user(vitalgate.RoleAdmin, vitalgate.DefaultSite, true), 1, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := e.reg.Overview(ctx, tt.p)
			wantCode(t, "Overview", err, tt.list)
			if len(rows) != tt.rows {
				t.Errorf("Overview listed %d devices, want %d", len(rows), tt.rows)
			}
			wantCode(t, "Revoke", e.reg.Revoke(ctx, tt.p, "dev-1"), tt.revoke)
		})
	}
}
