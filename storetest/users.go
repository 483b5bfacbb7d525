package storetest

import (
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// userTests are the conformance tests of vitalgate.UserStore (migration sqlite 0029,
// postgres 0026): console users and their sessions, with audit entries atomic with each
// write, a TOTP step that only moves forward, and sessions that end with their user's.
func (s *suite) userTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"User/CreateGetUpdate", s.testUserCreateGetUpdate},
		{"User/TOTPStep", s.testUserTOTPStep},
		{"User/Sessions", s.testUserSessions},
		{"User/Challenges", s.testUserChallenges},
	}
}

func testUser(id string) vitalgate.User {
	return vitalgate.User{ID: id, Site: vitalgate.DefaultSite, Role: vitalgate.RoleClinician,
		SetupHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + id, SetupExpiresAt: at(60),
		PatientIndexes: [][]byte{[]byte("pidx-1"), []byte("pidx-2")}, Passkeys: [][]byte{[]byte(`{"id":"a"}`)}, CreatedAt: at(0), UpdatedAt: at(0)}
}

func checkUser(t *testing.T, got, want vitalgate.User) {
	t.Helper()
	if got.ID != want.ID || got.Site != want.Site || got.Role != want.Role || got.PasswordHash != want.PasswordHash ||
		got.SetupHash != want.SetupHash || got.Disabled != want.Disabled || len(got.PatientIndexes) != len(want.PatientIndexes) ||
		len(got.Passkeys) != len(want.Passkeys) {
		t.Errorf("user = %+v, want %+v", got, want)
	}
	checkBytes(t, "TOTPSecret", got.TOTPSecret, want.TOTPSecret)
	for i := range min(len(got.Passkeys), len(want.Passkeys)) {
		checkBytes(t, "Passkeys", got.Passkeys[i], want.Passkeys[i])
	}
	for i := range min(len(got.PatientIndexes), len(want.PatientIndexes)) {
		checkBytes(t, "PatientIndexes", got.PatientIndexes[i], want.PatientIndexes[i])
	}
	checkTime(t, "SetupExpiresAt", got.SetupExpiresAt, want.SetupExpiresAt)
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

func (s *suite) testUserCreateGetUpdate(t *testing.T) {
	st := s.store(t)
	u := testUser("carol")
	must(t, "CreateUser", st.CreateUser(ctxT(t), u, entries("user-add", 1)...))
	wantCode(t, "CreateUser(again)", st.CreateUser(ctxT(t), u), vitalgate.ECONFLICT)
	must(t, "CreateUser(bob)", st.CreateUser(ctxT(t), vitalgate.User{ID: "bob", Site: "default", Role: vitalgate.RoleAdmin, CreatedAt: at(0), UpdatedAt: at(0)}))
	if n := auditSize(t, st); n != 1 {
		t.Errorf("audit size %d, want 1", n)
	}
	got, err := st.User(ctxT(t), "carol")
	must(t, "User", err)
	checkUser(t, got, u)
	_, err = st.User(ctxT(t), "nobody")
	wantCode(t, "User(nobody)", err, vitalgate.ENOTFOUND)
	us, err := st.Users(ctxT(t))
	must(t, "Users", err)
	if len(us) != 2 || us[0].ID != "bob" || us[1].ID != "carol" || us[0].PatientIndexes != nil {
		t.Errorf("Users = %+v, want bob (no care team) then carol", us)
	}

	u.PasswordHash, u.TOTPSecret, u.SetupHash, u.SetupExpiresAt = "$argon2id$pw", []byte{1, 2, 3}, "", time.Time{}
	u.PatientIndexes, u.Disabled, u.UpdatedAt = nil, true, at(5)
	u.Passkeys = append(u.Passkeys, []byte(`{"id":"b"}`))
	must(t, "UpdateUser", st.UpdateUser(ctxT(t), u, false, entries("user-upd", 2)...))
	got, err = st.User(ctxT(t), "carol")
	must(t, "User", err)
	checkUser(t, got, u)
	if n := auditSize(t, st); n != 3 {
		t.Errorf("audit size %d, want 3", n)
	}
	wantCode(t, "UpdateUser(nobody)", st.UpdateUser(ctxT(t), testUser("nobody"), false, entries("x", 1)...), vitalgate.ENOTFOUND)
	if n := auditSize(t, st); n != 3 {
		t.Errorf("audit size %d after a failed update, want 3 (entries atomic with the write)", n)
	}
}

func (s *suite) testUserTOTPStep(t *testing.T) {
	st := s.store(t)
	must(t, "CreateUser", st.CreateUser(ctxT(t), testUser("carol")))
	must(t, "UseTOTPStep(10)", st.UseTOTPStep(ctxT(t), "carol", 10))
	wantCode(t, "UseTOTPStep(10 again)", st.UseTOTPStep(ctxT(t), "carol", 10), vitalgate.ECONFLICT)
	wantCode(t, "UseTOTPStep(9)", st.UseTOTPStep(ctxT(t), "carol", 9), vitalgate.ECONFLICT)
	must(t, "UseTOTPStep(11)", st.UseTOTPStep(ctxT(t), "carol", 11))
	wantCode(t, "UseTOTPStep(nobody)", st.UseTOTPStep(ctxT(t), "nobody", 1), vitalgate.ENOTFOUND)
	u, err := st.User(ctxT(t), "carol")
	must(t, "User", err)
	if u.TOTPStep != 11 {
		t.Errorf("TOTPStep = %d, want 11", u.TOTPStep)
	}
	// An update keeps the step.
	must(t, "UpdateUser", st.UpdateUser(ctxT(t), u, false))
	wantCode(t, "UseTOTPStep(11 after update)", st.UseTOTPStep(ctxT(t), "carol", 11), vitalgate.ECONFLICT)
}

func (s *suite) testUserSessions(t *testing.T) {
	st := s.store(t)
	u := testUser("carol")
	must(t, "CreateUser", st.CreateUser(ctxT(t), u))
	ss := vitalgate.Session{IDHash: "aa01", UserID: "carol", Source: "192.0.2.7", CreatedAt: at(1), LastSeen: at(1)}
	must(t, "CreateSession", st.CreateSession(ctxT(t), ss, entries("login", 1)...))
	wantCode(t, "CreateSession(again)", st.CreateSession(ctxT(t), ss), vitalgate.ECONFLICT)
	wantCode(t, "CreateSession(no user)", st.CreateSession(ctxT(t), vitalgate.Session{IDHash: "bb", UserID: "nobody", CreatedAt: at(1), LastSeen: at(1)}), vitalgate.ENOTFOUND)
	got, err := st.Session(ctxT(t), "aa01")
	must(t, "Session", err)
	if got.UserID != "carol" || got.Source != "192.0.2.7" {
		t.Errorf("Session = %+v", got)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, at(1))
	must(t, "TouchSession", st.TouchSession(ctxT(t), "aa01", at(3)))
	got, err = st.Session(ctxT(t), "aa01")
	must(t, "Session", err)
	checkTime(t, "LastSeen", got.LastSeen, at(3))
	checkTime(t, "CreatedAt after touch", got.CreatedAt, at(1))
	wantCode(t, "TouchSession(none)", st.TouchSession(ctxT(t), "ffff", at(3)), vitalgate.ENOTFOUND)

	must(t, "DeleteSession", st.DeleteSession(ctxT(t), "aa01", entries("logout", 1)...))
	_, err = st.Session(ctxT(t), "aa01")
	wantCode(t, "Session(deleted)", err, vitalgate.ENOTFOUND)
	wantCode(t, "DeleteSession(again)", st.DeleteSession(ctxT(t), "aa01"), vitalgate.ENOTFOUND)
	if n := auditSize(t, st); n != 2 {
		t.Errorf("audit size %d, want 2", n)
	}

	// Two sessions end with an update that ends the user's sessions; a disabled user opens none.
	must(t, "CreateSession(1)", st.CreateSession(ctxT(t), vitalgate.Session{IDHash: "c1", UserID: "carol", CreatedAt: at(4), LastSeen: at(4)}))
	must(t, "CreateSession(2)", st.CreateSession(ctxT(t), vitalgate.Session{IDHash: "c2", UserID: "carol", CreatedAt: at(4), LastSeen: at(4)}))
	u.Disabled = true
	must(t, "UpdateUser(end sessions)", st.UpdateUser(ctxT(t), u, true))
	for _, h := range []string{"c1", "c2"} {
		_, err = st.Session(ctxT(t), h)
		wantCode(t, "Session after the user's sessions ended", err, vitalgate.ENOTFOUND)
	}
	wantCode(t, "CreateSession(disabled user)", st.CreateSession(ctxT(t), vitalgate.Session{IDHash: "c3", UserID: "carol", CreatedAt: at(4), LastSeen: at(4)}), vitalgate.ENOTFOUND)
}

func (s *suite) testUserChallenges(t *testing.T) {
	st := s.store(t)
	must(t, "PutChallenge", st.PutChallenge(ctxT(t), "k1", []byte(`{"challenge":"a"}`), at(10)))
	must(t, "PutChallenge(replace)", st.PutChallenge(ctxT(t), "k1", []byte(`{"challenge":"b"}`), at(10)))
	must(t, "PutChallenge(k2)", st.PutChallenge(ctxT(t), "k2", []byte(`{}`), at(10)))
	got, err := st.TakeChallenge(ctxT(t), "k1", at(5))
	must(t, "TakeChallenge", err)
	if string(got) != `{"challenge":"b"}` {
		t.Errorf("TakeChallenge = %s, want the replacement", got)
	}
	_, err = st.TakeChallenge(ctxT(t), "k1", at(5))
	wantCode(t, "TakeChallenge(taken)", err, vitalgate.ENOTFOUND)
	_, err = st.TakeChallenge(ctxT(t), "k2", at(10))
	wantCode(t, "TakeChallenge(expired)", err, vitalgate.ENOTFOUND)
	_, err = st.TakeChallenge(ctxT(t), "none", at(5))
	wantCode(t, "TakeChallenge(none)", err, vitalgate.ENOTFOUND)
}
