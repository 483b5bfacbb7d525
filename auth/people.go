package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Session lifetimes of the console.
const (
	// DefaultIdleTimeout ends a session after this long without a request (automatic
	// logoff, HIPAA 164.312(a)(2)(iii)).
	DefaultIdleTimeout = 15 * time.Minute
	// MaxSessionLifetime ends every session this long after sign-in, however busy.
	MaxSessionLifetime = 12 * time.Hour
	// MinPasswordLength and MaxPasswordLength bound a password (NIST SP 800-63B-4 asks for
	// at least 8, 15 when a password is the only factor; it is never the only factor here).
	MinPasswordLength = 12
	MaxPasswordLength = 128
)

// PeopleConfig are the collaborators and settings of People.
type PeopleConfig struct {
	Store    UserStore
	Secrets  SecretVerifier // the process-wide SecretChecker
	Failures FailureLimiter // per (user, source address): guard.Failures
	Audit    *audit.Log
	Hash     HashParams // of new passwords; zero: DefaultHashParams
	TOTP     TOTP
	// IdleTimeout ends a session after this long without a request (0: DefaultIdleTimeout;
	// 1 s to 12 h).
	IdleTimeout time.Duration
	Now         func() time.Time
	Rand        io.Reader
	Logger      *slog.Logger
}

// People signs console users in and out: the first sign-in with the one-time setup code
// (which sets the password and enrolls the TOTP second factor), every later sign-in with
// password and code, sessions kept in the store (any node serves them; ending one ends it
// everywhere) with an idle timeout and an absolute lifetime. Every sign-in, refusal, factor
// change and sign-out is audited here, never by a transport.
type People struct {
	cfg PeopleConfig
	wa  *webauthn.WebAuthn // nil: passkeys off (EnablePasskeys)
}

// NewPeople returns the console's sign-in service.
func NewPeople(cfg PeopleConfig) (*People, error) {
	if cfg.Store == nil || cfg.Secrets == nil || cfg.Failures == nil || cfg.Audit == nil {
		return nil, errors.New("auth: people need a store, a secret checker, a failure limiter and the audit log")
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.IdleTimeout < time.Second || cfg.IdleTimeout > MaxSessionLifetime {
		return nil, errors.New("auth: the console idle timeout must be between 1 s and 12 h")
	}
	if cfg.Hash == (HashParams{}) {
		cfg.Hash = DefaultHashParams
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &People{cfg: cfg}, nil
}

// IdleTimeout returns the idle timeout of sessions.
func (p *People) IdleTimeout() time.Duration { return p.cfg.IdleTimeout }

// errSignIn is the one answer to every failed sign-in: unknown user, disabled, wrong
// password, wrong or reused code, used or expired setup code.
var errSignIn = vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "sign-in failed: check your user id, password and authenticator code")

// SignIn is what a person types to sign in or to complete the setup.
type SignIn struct {
	ID       string
	Password string // the password (sign-in), the new password (setup)
	Code     string // the authenticator code
	Setup    string // the one-time setup code (setup only)
	Source   string // the caller's network address
}

// Enrollment is a new authenticator's secret, to show once during the setup.
type Enrollment struct {
	Secret string // base32, to type into the app
	URI    string // otpauth:// URI
}

func (p *People) entry(u vitalgate.User, in SignIn, subtype, desc string, err error) audit.Entry {
	e := audit.Entry{Time: p.cfg.Now().UTC(), Action: audit.ActionExecute, Type: "authn", Subtype: subtype,
		AgentType: audit.AgentUser, AgentID: trunc(in.ID), AgentRole: string(u.Role), SourceIP: in.Source,
		Outcome: audit.OutcomeSuccess, OutcomeDesc: desc, Resources: []string{"User/" + trunc(in.ID)}, Site: entrySite(u.Site)}
	if err != nil {
		e.Outcome, e.OutcomeDesc = audit.OutcomeMinorFailure, desc
	}
	if e.AgentID == "" {
		e.AgentID, e.Resources = "unknown", nil
	}
	return e
}

// refuse records a refused attempt (throttle count, audit) and returns the one answer.
func (p *People) refuse(ctx context.Context, u vitalgate.User, in SignIn, subtype, why string) error {
	p.cfg.Failures.Fail(in.ID, in.Source)
	if err := p.cfg.Audit.Append(ctx, p.entry(u, in, subtype, why, errSignIn)); err != nil {
		p.cfg.Logger.Error("audit append failed", "error", err.Error())
	}
	p.cfg.Logger.Info("console sign-in refused", "user", trunc(in.ID), "remote", in.Source, "reason", why)
	return errSignIn
}

// gate refuses an attempt of a (user, address) pair that failed too often lately.
func (p *People) gate(ctx context.Context, in SignIn, subtype string) error {
	if ok, wait := p.cfg.Failures.Allow(in.ID, in.Source); !ok {
		_ = p.cfg.Audit.Append(ctx, p.entry(vitalgate.User{}, in, subtype, "throttled after repeated failures", errSignIn))
		return &vitalgate.Error{Code: vitalgate.ETHROTTLED, Message: "too many failed sign-ins; wait and try again", Err: &Throttled{Wait: wait}}
	}
	return nil
}

// user reads the user named by in.ID; an unknown id is the zero user (refused later, after
// the same work as for a known one).
func (p *People) user(ctx context.Context, id string) (vitalgate.User, error) {
	if len(id) == 0 || len(id) > 64 {
		return vitalgate.User{}, nil
	}
	u, err := p.cfg.Store.User(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.User{}, nil
	}
	return u, err
}

// checkSetup verifies the one-time setup code of in.ID.
func (p *People) checkSetup(ctx context.Context, in SignIn, subtype string) (vitalgate.User, error) {
	if err := p.gate(ctx, in, subtype); err != nil {
		return vitalgate.User{}, err
	}
	u, err := p.user(ctx, in.ID)
	if err != nil {
		return u, err
	}
	ok, err := p.cfg.Secrets.Check(ctx, u.SetupHash, in.Setup)
	if vitalgate.ErrorCode(err) == vitalgate.ETHROTTLED || vitalgate.ErrorCode(err) == vitalgate.EUNAVAILABLE {
		return u, err
	}
	switch {
	case !ok:
		return u, p.refuse(ctx, u, in, subtype, "wrong, used or unknown setup code")
	case u.Disabled:
		return u, p.refuse(ctx, u, in, subtype, "user is disabled")
	case !p.cfg.Now().Before(u.SetupExpiresAt):
		return u, p.refuse(ctx, u, in, subtype, "setup code expired")
	}
	return u, nil
}

// BeginSetup checks a new user's one-time setup code (it stays good until CompleteSetup)
// and gives the user a new authenticator secret, shown once. EUNAUTHORIZED (one answer for
// every failure), ETHROTTLED.
func (p *People) BeginSetup(ctx context.Context, in SignIn) (Enrollment, error) {
	u, err := p.checkSetup(ctx, in, "console-setup")
	if err != nil {
		return Enrollment{}, err
	}
	if u.TOTPSecret, err = p.cfg.TOTP.NewSecret(p.cfg.Rand); err != nil {
		return Enrollment{}, err
	}
	u.UpdatedAt = p.cfg.Now().UTC()
	if err := p.cfg.Store.UpdateUser(ctx, u, true); err != nil {
		return Enrollment{}, err
	}
	return Enrollment{Secret: EncodeSecret(u.TOTPSecret), URI: p.cfg.TOTP.URI("Vitalgate", u.ID, u.TOTPSecret)}, nil
}

// CompleteSetup checks the setup code again and the first code of the new authenticator,
// sets the password, voids the setup code (audited as a factor change) and signs the user
// in. EUNAUTHORIZED, EINVALID for a password out of bounds, ETHROTTLED.
func (p *People) CompleteSetup(ctx context.Context, in SignIn) (string, vitalgate.User, error) {
	if n := utf8.RuneCountInString(in.Password); n < MinPasswordLength || len(in.Password) > MaxPasswordLength {
		return "", vitalgate.User{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "password", "a password is %d to %d characters", MinPasswordLength, MaxPasswordLength)
	}
	u, err := p.checkSetup(ctx, in, "console-setup")
	if err != nil {
		return "", u, err
	}
	if err := p.checkCode(ctx, u, in, "console-setup"); err != nil {
		return "", u, err
	}
	if u.PasswordHash, err = HashSecret(in.Password, p.cfg.Hash, p.cfg.Rand); err != nil {
		return "", u, err
	}
	u.SetupHash, u.SetupExpiresAt, u.UpdatedAt = "", time.Time{}, p.cfg.Now().UTC()
	e := p.entry(u, in, "console-factor", "password set; TOTP authenticator enrolled; setup code used", nil)
	e.Action = audit.ActionUpdate
	if err := p.cfg.Store.UpdateUser(ctx, u, true, e.Marshal()); err != nil {
		return "", u, err
	}
	return p.open(ctx, u, in)
}

// checkCode verifies an authenticator code and uses its time step (once, on every node).
func (p *People) checkCode(ctx context.Context, u vitalgate.User, in SignIn, subtype string) error {
	step, ok := p.cfg.TOTP.Verify(u.TOTPSecret, in.Code, p.cfg.Now())
	if !ok {
		return p.refuse(ctx, u, in, subtype, "wrong authenticator code")
	}
	if err := p.cfg.Store.UseTOTPStep(ctx, u.ID, step); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return p.refuse(ctx, u, in, subtype, "authenticator code used before")
		}
		return err
	}
	return nil
}

// Login signs a user in with password and authenticator code and returns the session
// token (for the cookie) and the user. EUNAUTHORIZED (one answer for unknown, disabled,
// not set up, wrong password or code), ETHROTTLED (after repeated failures of this user
// from this address, or when too many hashes run at once), EUNAVAILABLE.
func (p *People) Login(ctx context.Context, in SignIn) (string, vitalgate.User, error) {
	if err := p.gate(ctx, in, "console-login"); err != nil {
		return "", vitalgate.User{}, err
	}
	u, err := p.user(ctx, in.ID)
	if err != nil {
		return "", u, err
	}
	ok, err := p.cfg.Secrets.Check(ctx, u.PasswordHash, in.Password)
	if vitalgate.ErrorCode(err) == vitalgate.ETHROTTLED || vitalgate.ErrorCode(err) == vitalgate.EUNAVAILABLE {
		return "", u, err
	}
	switch {
	case !ok:
		return "", u, p.refuse(ctx, u, in, "console-login", "wrong password, or no such user")
	case u.Disabled:
		return "", u, p.refuse(ctx, u, in, "console-login", "user is disabled")
	case u.SetupHash != "" || len(u.TOTPSecret) == 0:
		return "", u, p.refuse(ctx, u, in, "console-login", "setup not completed")
	}
	if err := p.checkCode(ctx, u, in, "console-login"); err != nil {
		return "", u, err
	}
	return p.open(ctx, u, in)
}

// Reauthenticate checks the password and a new authenticator code of the signed-in person p
// again, for a dangerous act, and returns p marked Reauthenticated (what such acts ask for).
// The check and every refusal are audited and throttled like a sign-in. EUNAUTHORIZED,
// ETHROTTLED, EFORBIDDEN for a principal that is not a console user.
func (p *People) Reauthenticate(ctx context.Context, who vitalgate.Principal, in SignIn) (vitalgate.Principal, error) {
	if who.Kind != audit.AgentUser {
		return who, vitalgate.Errorf(vitalgate.EFORBIDDEN, "only a person signed in to the console re-authenticates")
	}
	in.ID, in.Source = who.ID, who.RemoteIP
	if err := p.gate(ctx, in, "console-reauth"); err != nil {
		return who, err
	}
	u, err := p.user(ctx, in.ID)
	if err != nil {
		return who, err
	}
	ok, err := p.cfg.Secrets.Check(ctx, u.PasswordHash, in.Password)
	if vitalgate.ErrorCode(err) == vitalgate.ETHROTTLED || vitalgate.ErrorCode(err) == vitalgate.EUNAVAILABLE {
		return who, err
	}
	switch {
	case !ok:
		return who, p.refuse(ctx, u, in, "console-reauth", "wrong password")
	case u.Disabled:
		return who, p.refuse(ctx, u, in, "console-reauth", "user is disabled")
	}
	if err := p.checkCode(ctx, u, in, "console-reauth"); err != nil {
		return who, err
	}
	p.cfg.Failures.Succeed(in.ID, in.Source)
	if err := p.cfg.Audit.Append(ctx, p.entry(u, in, "console-reauth", "re-authenticated with password and TOTP", nil)); err != nil {
		return who, vitalgate.Unavailable(err, "the re-authentication could not be audited; try again")
	}
	who.Reauthenticated = true
	return who, nil
}

// open starts a session of u, audited as a sign-in.
func (p *People) open(ctx context.Context, u vitalgate.User, in SignIn) (string, vitalgate.User, error) {
	return p.openWith(ctx, u, in, "signed in with password and TOTP")
}

// openWith is open with the audit entry's description of how the user signed in.
func (p *People) openWith(ctx context.Context, u vitalgate.User, in SignIn, how string) (string, vitalgate.User, error) {
	p.cfg.Failures.Succeed(in.ID, in.Source)
	token, err := NewSecret(p.cfg.Rand)
	if err != nil {
		return "", u, err
	}
	now := p.cfg.Now().UTC()
	e := p.entry(u, in, "console-login", how, nil)
	if err := p.cfg.Store.CreateSession(ctx, vitalgate.Session{IDHash: sessionHash(token), UserID: u.ID, Source: in.Source,
		CreatedAt: now, LastSeen: now}, e.Marshal()); err != nil {
		return "", u, err
	}
	p.cfg.Logger.Info("console sign-in", "user", u.ID, "role", u.Role, "remote", in.Source)
	return token, u, nil
}

// sessionHash is what the store keeps of a session token.
func sessionHash(token string) string {
	sum := sha256.Sum256([]byte("vitalgate-console-session\x00" + token))
	return hex.EncodeToString(sum[:])
}

// FormToken returns the anti-forgery token of the forms of the session with token: bound
// to the session, so a page of another session (or none) cannot supply it.
func FormToken(token string) string {
	sum := sha256.Sum256([]byte("vitalgate-console-form\x00" + token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CheckFormToken reports whether form is the anti-forgery token of the session with token,
// in constant time.
func CheckFormToken(token, form string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(FormToken(token)), []byte(form)) == 1
}

var errNoSession = vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "you are not signed in, or your session ended; sign in again")

// Session returns the principal of the session with token, and moves its idle clock. A
// session idle longer than the idle timeout, or older than MaxSessionLifetime, is ended
// (audited as an automatic logoff); a disabled user's is too. EUNAUTHORIZED.
func (p *People) Session(ctx context.Context, token, source string) (vitalgate.Principal, error) {
	if token == "" || len(token) > 128 {
		return vitalgate.Principal{}, errNoSession
	}
	h := sessionHash(token)
	ss, err := p.cfg.Store.Session(ctx, h)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Principal{}, errNoSession
	} else if err != nil {
		return vitalgate.Principal{}, err
	}
	u, err := p.user(ctx, ss.UserID)
	if err != nil {
		return vitalgate.Principal{}, err
	}
	now := p.cfg.Now()
	why := ""
	switch {
	case u.ID == "" || u.Disabled:
		why = "user disabled or removed"
	case now.Sub(ss.LastSeen) >= p.cfg.IdleTimeout:
		why = "automatic logoff after " + p.cfg.IdleTimeout.String() + " idle"
	case now.Sub(ss.CreatedAt) >= MaxSessionLifetime:
		why = "session reached its lifetime of " + MaxSessionLifetime.String()
	}
	if why != "" {
		e := p.entry(u, SignIn{ID: ss.UserID, Source: source}, "console-logout", why, nil)
		if err := p.cfg.Store.DeleteSession(ctx, h, e.Marshal()); err != nil && vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
			return vitalgate.Principal{}, err
		}
		return vitalgate.Principal{}, errNoSession
	}
	if err := p.cfg.Store.TouchSession(ctx, h, now.UTC()); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return vitalgate.Principal{}, errNoSession
		}
		return vitalgate.Principal{}, err
	}
	return vitalgate.Principal{Kind: audit.AgentUser, ID: u.ID, Role: u.Role, Scopes: RoleScopes[u.Role], RemoteIP: source, Site: u.Site}, nil
}

// Logout ends the session with token everywhere, audited. A session that is already gone
// is not an error.
func (p *People) Logout(ctx context.Context, token, source string) error {
	h := sessionHash(token)
	ss, err := p.cfg.Store.Session(ctx, h)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	u, err := p.user(ctx, ss.UserID)
	if err != nil {
		return err
	}
	e := p.entry(u, SignIn{ID: ss.UserID, Source: source}, "console-logout", "signed out", nil)
	if err := p.cfg.Store.DeleteSession(ctx, h, e.Marshal()); err != nil && vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		return err
	}
	return nil
}
