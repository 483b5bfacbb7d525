package auth_test

import (
	"context"
	"encoding/base32"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/guard"
)

// TestTOTPVectors checks the HMAC-SHA-256 codes of RFC 6238 Appendix B (the last six of its
// eight digits), and the one-step skew of Verify.
func TestTOTPVectors(t *testing.T) {
	sha256Key := []byte("12345678901234567890123456789012")
	tests := []struct {
		name string
		totp auth.TOTP
		key  []byte
		at   int64
		want string
	}{
		{"59", auth.TOTP{}, sha256Key, 59, "119246"},
		{"1111111109", auth.TOTP{}, sha256Key, 1111111109, "084774"},
		{"1234567890", auth.TOTP{}, sha256Key, 1234567890, "819424"},
		{"2000000000", auth.TOTP{}, sha256Key, 2000000000, "698825"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(tt.at, 0)
			if got := tt.totp.Code(tt.key, tt.totp.Step(now)); got != tt.want {
				t.Fatalf("Code = %s, want %s", got, tt.want)
			}
			for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
				if step, ok := tt.totp.Verify(tt.key, tt.want, now.Add(d)); !ok || step != tt.totp.Step(now) {
					t.Errorf("Verify at %v = %d, %v; want step %d", d, step, ok, tt.totp.Step(now))
				}
			}
			if _, ok := tt.totp.Verify(tt.key, tt.want, now.Add(90*time.Second)); ok {
				t.Error("a code three steps old verified")
			}
			if _, ok := tt.totp.Verify(tt.key, "12345", now); ok {
				t.Error("a five-digit code verified")
			}
		})
	}
}

type peopleEnv struct {
	*svcEnv
	admin  *auth.UserAdmin
	people *auth.People
	totp   auth.TOTP
}

func mustPeople(t *testing.T) *peopleEnv {
	t.Helper()
	e := mustService(t)
	clock := func() time.Time { return e.now }
	alog := e.alog
	p, err := auth.NewPeople(auth.PeopleConfig{Store: e.store, Secrets: e.secrets, Failures: guard.NewFailures(3, time.Minute, clock),
		Audit: alog, Hash: fast, Now: clock, IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return &peopleEnv{svcEnv: e, people: p, admin: &auth.UserAdmin{Store: e.store, Operator: "alice", Hash: fast, Now: clock,
		Index: func(site, id string) []byte { return []byte(site + "/" + id) }}}
}

// setup adds a user and completes its setup; it returns the TOTP secret and the password.
func (e *peopleEnv) setup(t *testing.T, id string, role vitalgate.Role) ([]byte, string) {
	t.Helper()
	ctx := context.Background()
	code, err := e.admin.Add(ctx, vitalgate.User{ID: id, Role: role}, nil)
	if err != nil {
		t.Fatal(err)
	}
	enr, err := e.people.BeginSetup(ctx, auth.SignIn{ID: id, Setup: code, Source: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	secret := mustBase32(t, enr.Secret)
	pw := "correct horse battery staple"
	tok, u, err := e.people.CompleteSetup(ctx, auth.SignIn{ID: id, Setup: code, Password: pw, Code: e.code(secret), Source: "192.0.2.1"})
	if err != nil || tok == "" || u.ID != id {
		t.Fatalf("CompleteSetup = %q %+v %v", tok, u, err)
	}
	if _, _, err := e.people.CompleteSetup(ctx, auth.SignIn{ID: id, Setup: code, Password: pw, Code: e.code(secret), Source: "192.0.2.1"}); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
		t.Fatalf("the setup code a second time: %v, want EUNAUTHORIZED", err)
	}
	e.now = e.now.Add(30 * time.Second) // the next code
	return secret, pw
}

func mustBase32(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *peopleEnv) code(secret []byte) string { return e.totp.Code(secret, e.totp.Step(e.now)) }

// TestPeopleLogin covers the sign-in of a console user: the setup, password and TOTP, a
// code good once, one answer for every failure, throttling per (user, address), the idle
// timeout, sign-out, disable and reset ending every session; each decision audited.
func TestPeopleLogin(t *testing.T) {
	e := mustPeople(t)
	ctx := context.Background()
	secret, pw := e.setup(t, "carol", vitalgate.RoleClinician)
	in := func(pw, code, src string) auth.SignIn {
		return auth.SignIn{ID: "carol", Password: pw, Code: code, Source: src}
	}

	from := e.size()
	tok, _, err := e.people.Login(ctx, in(pw, e.code(secret), "192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if es := e.entries(from); len(es) != 1 || es[0].Subtype != "console-login" || es[0].AgentType != "user" || es[0].Outcome != "0" {
		t.Fatalf("audit of the sign-in: %+v", es)
	}
	p, err := e.people.Session(ctx, tok, "192.0.2.1")
	if err != nil || p.ID != "carol" || p.Role != vitalgate.RoleClinician || p.Site != vitalgate.DefaultSite || p.Kind != "user" {
		t.Fatalf("Session = %+v, %v", p, err)
	}
	if !auth.CheckFormToken(tok, auth.FormToken(tok)) || auth.CheckFormToken(tok, auth.FormToken("other")) || auth.CheckFormToken("", auth.FormToken("")) {
		t.Error("form token check")
	}

	refusals := []struct {
		name string
		in   auth.SignIn
	}{
		{"code reused", in(pw, e.code(secret), "192.0.2.1")},
		{"wrong password", in("wrong password here", e.code(secret), "192.0.2.2")},
		{"wrong code", in(pw, "000000", "192.0.2.3")},
		{"no code", in(pw, "", "192.0.2.3")},
		{"unknown user", auth.SignIn{ID: "mallory", Password: pw, Code: e.code(secret), Source: "192.0.2.4"}},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			from := e.size()
			_, _, err := e.people.Login(ctx, r.in)
			if vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED || !strings.Contains(vitalgate.ErrorMessage(err), "sign-in failed") {
				t.Fatalf("Login = %v, want the one EUNAUTHORIZED answer", err)
			}
			if es := e.entries(from); len(es) != 1 || es[0].Outcome == "0" || strings.Contains(string(es[0].Marshal()), pw) {
				t.Fatalf("audit of the refusal: %+v", es)
			}
		})
	}
	t.Run("throttled per user and address", func(t *testing.T) {
		for range 3 {
			_, _, _ = e.people.Login(ctx, in("wrong password here", "000000", "198.51.100.9"))
		}
		e.now = e.now.Add(30 * time.Second)
		if _, _, err := e.people.Login(ctx, in(pw, e.code(secret), "198.51.100.9")); vitalgate.ErrorCode(err) != vitalgate.ETHROTTLED {
			t.Fatalf("after 3 failures: %v, want ETHROTTLED", err)
		}
		// Another address is not locked out by them.
		if _, _, err := e.people.Login(ctx, in(pw, e.code(secret), "198.51.100.10")); err != nil {
			t.Fatalf("from another address: %v", err)
		}
	})
	t.Run("idle logoff", func(t *testing.T) {
		e.now = e.now.Add(30 * time.Second)
		tok, _, err := e.people.Login(ctx, in(pw, e.code(secret), "192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		e.now = e.now.Add(59 * time.Second)
		if _, err := e.people.Session(ctx, tok, "192.0.2.1"); err != nil {
			t.Fatalf("59 s idle: %v", err)
		}
		e.now = e.now.Add(61 * time.Second)
		from := e.size()
		if _, err := e.people.Session(ctx, tok, "192.0.2.1"); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
			t.Fatalf("61 s idle: %v, want EUNAUTHORIZED", err)
		}
		if es := e.entries(from); len(es) != 1 || es[0].Subtype != "console-logout" || !strings.Contains(es[0].OutcomeDesc, "automatic logoff") {
			t.Fatalf("audit of the logoff: %+v", es)
		}
	})
	t.Run("absolute lifetime", func(t *testing.T) {
		e.now = e.now.Add(30 * time.Second)
		tok, _, err := e.people.Login(ctx, in(pw, e.code(secret), "192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		start := e.now
		for e.now.Sub(start) < auth.MaxSessionLifetime-time.Minute { // busy all along: never idle
			e.now = e.now.Add(50 * time.Second)
			if _, err := e.people.Session(ctx, tok, "192.0.2.1"); err != nil {
				t.Fatalf("after %v: %v", e.now.Sub(start), err)
			}
		}
		e.now = start.Add(auth.MaxSessionLifetime)
		if _, err := e.people.Session(ctx, tok, "192.0.2.1"); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
			t.Fatalf("after 12 h: %v, want EUNAUTHORIZED", err)
		}
	})
	t.Run("logout", func(t *testing.T) {
		e.now = e.now.Add(30 * time.Second)
		tok, _, err := e.people.Login(ctx, in(pw, e.code(secret), "192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.people.Logout(ctx, tok, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.people.Session(ctx, tok, "192.0.2.1"); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
			t.Fatalf("after logout: %v", err)
		}
	})
	t.Run("reauthenticate", func(t *testing.T) {
		e.now = e.now.Add(30 * time.Second)
		who := vitalgate.Principal{Kind: "user", ID: "carol", Role: vitalgate.RoleClinician, RemoteIP: "192.0.2.1"}
		for _, bad := range []auth.SignIn{{Password: "wrong password here", Code: e.code(secret)}, {Password: pw, Code: "000000"}} {
			if p, err := e.people.Reauthenticate(ctx, who, bad); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED || p.Reauthenticated {
				t.Fatalf("Reauthenticate(%+v) = %+v, %v; want EUNAUTHORIZED", bad, p, err)
			}
		}
		from := e.size()
		p, err := e.people.Reauthenticate(ctx, who, auth.SignIn{Password: pw, Code: e.code(secret)})
		if err != nil || !p.Reauthenticated || p.ID != "carol" {
			t.Fatalf("Reauthenticate = %+v, %v", p, err)
		}
		if es := e.entries(from); len(es) != 1 || es[0].Subtype != "console-reauth" || es[0].Outcome != "0" {
			t.Fatalf("audit: %+v", es)
		}
		if _, err := e.people.Reauthenticate(ctx, vitalgate.Principal{Kind: "client", ID: "carol"}, auth.SignIn{Password: pw}); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
			t.Fatalf("an API client re-authenticates: %v", err)
		}
	})
	t.Run("disable and reset end sessions", func(t *testing.T) {
		e.now = e.now.Add(30 * time.Second)
		tok, _, err := e.people.Login(ctx, in(pw, e.code(secret), "192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.admin.Disable(ctx, "carol"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.people.Session(ctx, tok, "192.0.2.1"); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
			t.Fatalf("after disable: %v", err)
		}
		e.now = e.now.Add(30 * time.Second)
		if _, _, err := e.people.Login(ctx, in(pw, e.code(secret), "192.0.2.1")); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
			t.Fatalf("a disabled user signs in: %v", err)
		}
		u, _ := e.store.User(ctx, "carol")
		u.Passkeys = [][]byte{[]byte(`{}`)}
		if err := e.store.UpdateUser(ctx, u, false); err != nil {
			t.Fatal(err)
		}
		code, err := e.admin.Reset(ctx, "carol")
		if err != nil || code == "" {
			t.Fatal(err)
		}
		if u, _ := e.store.User(ctx, "carol"); u.Passkeys != nil || u.TOTPSecret != nil || u.PasswordHash != "" {
			t.Fatalf("after a reset: %+v", u)
		}
		e.now = e.now.Add(30 * time.Second)
		if _, _, err := e.people.Login(ctx, in(pw, e.code(secret), "192.0.2.1")); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
			t.Fatalf("the old password and authenticator after a reset: %v", err)
		}
		if _, err := e.people.BeginSetup(ctx, auth.SignIn{ID: "carol", Setup: code, Source: "192.0.2.1"}); err != nil {
			t.Fatalf("setup after reset: %v", err)
		}
	})
}

// TestUserAdmin: roles a person may hold, care teams of clinicians only, sites that exist,
// unique ids, and the audit entry of each change.
func TestUserAdmin(t *testing.T) {
	e := mustPeople(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		u        vitalgate.User
		patients []string
		code     string
	}{
		{"clinician with care team", vitalgate.User{ID: "doc", Role: vitalgate.RoleClinician}, []string{"pat-1", "pat-2"}, ""},
		{"auditor", vitalgate.User{ID: "aud", Role: vitalgate.RoleAuditor}, nil, ""},
		{"taken id", vitalgate.User{ID: "doc", Role: vitalgate.RoleAdmin}, nil, vitalgate.ECONFLICT},
		{"ehr-system is no person", vitalgate.User{ID: "ehr", Role: vitalgate.RoleEHRSystem}, nil, vitalgate.EINVALID},
		{"device is no person", vitalgate.User{ID: "dev", Role: vitalgate.RoleDevice}, nil, vitalgate.EINVALID},
		{"care team of an admin", vitalgate.User{ID: "adm", Role: vitalgate.RoleAdmin}, []string{"pat-1"}, vitalgate.EINVALID},
		{"unknown site", vitalgate.User{ID: "x", Role: vitalgate.RoleAdmin, Site: "nowhere"}, nil, vitalgate.ENOTFOUND},
		{"every site for an admin", vitalgate.User{ID: "y", Role: vitalgate.RoleAdmin, Site: vitalgate.AllSites}, nil, vitalgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := e.size()
			code, err := e.admin.Add(ctx, tt.u, tt.patients)
			if vitalgate.ErrorCode(err) != tt.code {
				t.Fatalf("Add = %v, want code %q", err, tt.code)
			}
			if tt.code != "" {
				return
			}
			if len(code) != 43 {
				t.Errorf("setup code %q", code)
			}
			if es := e.entries(from); len(es) != 1 || es[0].Subtype != "user-add" || es[0].AgentID != "alice" || strings.Contains(string(es[0].Marshal()), code) {
				t.Fatalf("audit: %+v", es)
			}
			u, err := e.store.User(ctx, tt.u.ID)
			if err != nil || len(u.PatientIndexes) != len(tt.patients) || u.PasswordHash != "" || u.SetupHash == "" {
				t.Fatalf("stored %+v, %v", u, err)
			}
		})
	}
	if err := e.admin.Disable(ctx, "nobody"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("Disable(nobody) = %v", err)
	}
	us, err := e.admin.List(ctx)
	if err != nil || len(us) != 2 {
		t.Fatalf("List = %d users, %v", len(us), err)
	}
}

// FuzzTOTPVerify: whatever a browser sends as a code, Verify never panics and accepts only
// the six digits of a step within one of now.
func FuzzTOTPVerify(f *testing.F) {
	for _, s := range []string{"119246", "000000", "", " 119246 ", "1192466", "١١٩٢٤٦", "\x00\x00\x00\x00\x00\x00"} {
		f.Add(s)
	}
	key := []byte("12345678901234567890123456789012")
	now := time.Unix(59, 0)
	f.Fuzz(func(t *testing.T, code string) {
		var o auth.TOTP
		step, ok := o.Verify(key, code, now)
		if ok && (step < o.Step(now)-1 || step > o.Step(now)+1 || strings.TrimSpace(code) != o.Code(key, step)) {
			t.Fatalf("Verify(%q) accepted step %d", code, step)
		}
	})
}
