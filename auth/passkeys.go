package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Passkeys (WebAuthn, with github.com/go-webauthn/webauthn: the maintained Go relying-party
// library, used by Gitea, Authelia and others) let a person sign in with a passkey instead
// of password and TOTP: a passkey that verifies its user (PIN or biometric) is two factors
// in itself. Only ES256 (ECDSA P-256 with SHA-256, FIPS approved) credentials are asked for
// and accepted, without attestation. A user adds passkeys once signed in.

// challengeTTL bounds a WebAuthn ceremony between its two requests.
const challengeTTL = 5 * time.Minute

// maxPasskeyBody bounds a WebAuthn response read from a browser.
const maxPasskeyBody = 64 << 10

// EnablePasskeys turns passkeys on for the relying-party id rpID (the console's host name:
// never an IP address) and the origins browsers load the console from.
func (p *People) EnablePasskeys(rpID string, origins []string) error {
	wa, err := webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: "Vitalgate", RPOrigins: origins,
		AuthenticatorSelection: protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(), UserVerification: protocol.VerificationRequired},
		AttestationPreference: protocol.PreferNoAttestation})
	if err != nil {
		return err
	}
	p.wa = wa
	return nil
}

// PasskeysEnabled reports whether EnablePasskeys was called.
func (p *People) PasskeysEnabled() bool { return p.wa != nil }

var errNoPasskeys = vitalgate.Errorf(vitalgate.EUNSUPPORTED, "passkeys are not enabled on this server (the console needs a host name, not an IP address)")

// waUser is a console user as the WebAuthn library sees it.
type waUser struct {
	u     vitalgate.User
	creds []webauthn.Credential
}

func (w *waUser) WebAuthnID() []byte                         { return []byte(w.u.ID) }
func (w *waUser) WebAuthnName() string                       { return w.u.ID }
func (w *waUser) WebAuthnDisplayName() string                { return w.u.ID }
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

func newWAUser(u vitalgate.User) (*waUser, error) {
	w := &waUser{u: u}
	for _, b := range u.Passkeys {
		var c webauthn.Credential
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, vitalgate.Internal(err, "stored passkey")
		}
		w.creds = append(w.creds, c)
	}
	return w, nil
}

func challengeKey(purpose, token string) string {
	sum := sha256.Sum256([]byte("vitalgate-webauthn\x00" + purpose + "\x00" + token))
	return hex.EncodeToString(sum[:])
}

func (p *People) putSession(ctx context.Context, key string, sd *webauthn.SessionData) error {
	b, err := json.Marshal(sd)
	if err != nil {
		return vitalgate.Internal(err, "webauthn session")
	}
	return p.cfg.Store.PutChallenge(ctx, key, b, p.cfg.Now().Add(challengeTTL))
}

func (p *People) takeSession(ctx context.Context, key string) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	b, err := p.cfg.Store.TakeChallenge(ctx, key, p.cfg.Now())
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return sd, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "the passkey request expired or was used; try again")
	} else if err != nil {
		return sd, err
	}
	if err := json.Unmarshal(b, &sd); err != nil {
		return sd, vitalgate.Internal(err, "webauthn session")
	}
	return sd, nil
}

var es256Only = webauthn.WithCredentialParameters([]protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256}})

// BeginPasskeyRegistration starts adding a passkey for the signed-in person who, with the
// session token token; it returns the options for navigator.credentials.create (JSON).
// EUNSUPPORTED when passkeys are off, EFORBIDDEN for a principal that is not a person.
func (p *People) BeginPasskeyRegistration(ctx context.Context, who vitalgate.Principal, token string) ([]byte, error) {
	if p.wa == nil {
		return nil, errNoPasskeys
	}
	if who.Kind != audit.AgentUser {
		return nil, vitalgate.Errorf(vitalgate.EFORBIDDEN, "only a person signed in to the console adds a passkey")
	}
	u, err := p.cfg.Store.User(ctx, who.ID)
	if err != nil {
		return nil, err
	}
	w, err := newWAUser(u)
	if err != nil {
		return nil, err
	}
	creation, sd, err := p.wa.BeginRegistration(w, es256Only, webauthn.WithExclusions(webauthn.Credentials(w.creds).CredentialDescriptors()))
	if err != nil {
		return nil, vitalgate.Internal(err, "webauthn registration")
	}
	if err := p.putSession(ctx, challengeKey("register", token), sd); err != nil {
		return nil, err
	}
	return json.Marshal(creation)
}

// FinishPasskeyRegistration verifies the browser's answer (body, JSON) and adds the passkey
// to the signed-in person, audited as a factor change. EUNAUTHORIZED for an expired or
// forged ceremony, EINVALID for an answer that does not verify.
func (p *People) FinishPasskeyRegistration(ctx context.Context, who vitalgate.Principal, token string, body io.Reader) error {
	if p.wa == nil {
		return errNoPasskeys
	}
	sd, err := p.takeSession(ctx, challengeKey("register", token))
	if err != nil {
		return err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(io.LimitReader(body, maxPasskeyBody))
	if err != nil {
		return vitalgate.Errorf(vitalgate.EINVALID, "the passkey answer could not be read")
	}
	u, err := p.cfg.Store.User(ctx, who.ID)
	if err != nil {
		return err
	}
	if err := approvedPasskey(parsed); err != nil {
		_ = p.cfg.Audit.Append(ctx, p.entry(u, SignIn{ID: who.ID, Source: who.RemoteIP}, "console-factor", "passkey refused: "+vitalgate.ErrorMessage(err), err))
		return err
	}
	w, err := newWAUser(u)
	if err != nil {
		return err
	}
	cred, err := p.wa.CreateCredential(w, sd, parsed)
	if err != nil {
		in := SignIn{ID: who.ID, Source: who.RemoteIP}
		_ = p.cfg.Audit.Append(ctx, p.entry(u, in, "console-factor", "passkey refused: "+trunc(err.Error()), err))
		return vitalgate.Errorf(vitalgate.EINVALID, "the passkey did not verify; try again")
	}
	b, err := json.Marshal(cred)
	if err != nil {
		return vitalgate.Internal(err, "passkey")
	}
	u.Passkeys = append(u.Passkeys, b)
	u.UpdatedAt = p.cfg.Now().UTC()
	e := p.entry(u, SignIn{ID: who.ID, Source: who.RemoteIP}, "console-factor", "passkey added (ES256); "+strconv.Itoa(len(u.Passkeys))+" passkeys", nil)
	e.Action = audit.ActionUpdate
	return p.cfg.Store.UpdateUser(ctx, u, false, e.Marshal())
}

// approvedPasskey refuses, before the library verifies anything, a new credential that is
// not an ES256 (P-256) key or that comes with an attestation statement: only the "none"
// attestation format is accepted (attestation is not asked for), so the library's
// attestation verifiers (TPM, SafetyNet JWT, certificate revocation) and its non-approved
// curves (secp256k1) are never reached; the assertions of a stored ES256 key are verified by
// crypto/ecdsa.
func approvedPasskey(parsed *protocol.ParsedCredentialCreationData) error {
	if f := parsed.Response.AttestationObject.Format; f != "none" {
		return vitalgate.Errorf(vitalgate.EINVALID, "the passkey came with an attestation (%q): only passkeys without attestation are accepted", trunc(f))
	}
	key, err := webauthncose.ParsePublicKey(parsed.Response.AttestationObject.AuthData.AttData.CredentialPublicKey)
	if err != nil {
		return vitalgate.Errorf(vitalgate.EINVALID, "the passkey's public key could not be read")
	}
	ec, ok := key.(webauthncose.EC2PublicKeyData)
	if !ok || ec.Algorithm != int64(webauthncose.AlgES256) || ec.Curve != int64(webauthncose.P256) {
		return vitalgate.Errorf(vitalgate.EINVALID, "the passkey is not an ES256 (P-256) key: choose another authenticator")
	}
	return nil
}

// BeginPasskeyLogin starts a sign-in with a passkey for the browser holding the pre-session
// token; it returns the options for navigator.credentials.get (JSON). EUNSUPPORTED.
func (p *People) BeginPasskeyLogin(ctx context.Context, token string) ([]byte, error) {
	if p.wa == nil {
		return nil, errNoPasskeys
	}
	assertion, sd, err := p.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, vitalgate.Internal(err, "webauthn login")
	}
	if err := p.putSession(ctx, challengeKey("login", token), sd); err != nil {
		return nil, err
	}
	return json.Marshal(assertion)
}

// FinishPasskeyLogin verifies the browser's assertion (body, JSON) and signs its user in:
// the session token and the user. Refusals are audited, throttled per (user, address) and
// answered alike: EUNAUTHORIZED, ETHROTTLED.
func (p *People) FinishPasskeyLogin(ctx context.Context, token string, body io.Reader, source string) (string, vitalgate.User, error) {
	if p.wa == nil {
		return "", vitalgate.User{}, errNoPasskeys
	}
	sd, err := p.takeSession(ctx, challengeKey("login", token))
	if err != nil {
		return "", vitalgate.User{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBody(io.LimitReader(body, maxPasskeyBody))
	if err != nil {
		return "", vitalgate.User{}, vitalgate.Errorf(vitalgate.EINVALID, "the passkey answer could not be read")
	}
	in := SignIn{ID: trunc(string(parsed.Response.UserHandle)), Source: source}
	if err := p.gate(ctx, in, "console-login"); err != nil {
		return "", vitalgate.User{}, err
	}
	var found vitalgate.User
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		u, err := p.user(ctx, string(userHandle))
		if err != nil {
			return nil, err
		}
		if u.ID == "" || u.Disabled || u.SetupHash != "" {
			return nil, errors.New("no enabled user has this passkey")
		}
		found = u
		return newWAUser(u)
	}
	cred, err := p.wa.ValidateDiscoverableLogin(handler, sd, parsed)
	if err != nil {
		return "", found, p.refuse(ctx, found, in, "console-login", "passkey refused: "+trunc(err.Error()))
	}
	// Keep the new signature counter and flags of the credential used.
	for i, b := range found.Passkeys {
		var c webauthn.Credential
		if json.Unmarshal(b, &c) == nil && bytes.Equal(c.ID, cred.ID) {
			if nb, err := json.Marshal(cred); err == nil {
				found.Passkeys[i] = nb
			}
		}
	}
	found.UpdatedAt = p.cfg.Now().UTC()
	if err := p.cfg.Store.UpdateUser(ctx, found, false); err != nil {
		return "", found, err
	}
	tok, u, err := p.openWith(ctx, found, in, "signed in with a passkey (user verified)")
	return tok, u, err
}

// BeginPasskeyReauth starts a re-authentication of the signed-in person who with one of
// their passkeys (for a dangerous act), for the browser holding the session token; it
// returns the options for navigator.credentials.get (JSON). EUNSUPPORTED, EINVALID when
// the person has no passkey.
func (p *People) BeginPasskeyReauth(ctx context.Context, who vitalgate.Principal, token string) ([]byte, error) {
	if p.wa == nil {
		return nil, errNoPasskeys
	}
	if who.Kind != audit.AgentUser {
		return nil, vitalgate.Errorf(vitalgate.EFORBIDDEN, "only a person signed in to the console re-authenticates")
	}
	u, err := p.cfg.Store.User(ctx, who.ID)
	if err != nil {
		return nil, err
	}
	if len(u.Passkeys) == 0 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "you have no passkey: confirm with your password and authenticator code")
	}
	w, err := newWAUser(u)
	if err != nil {
		return nil, err
	}
	assertion, sd, err := p.wa.BeginLogin(w, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, vitalgate.Internal(err, "webauthn re-authentication")
	}
	if err := p.putSession(ctx, challengeKey("reauth", token), sd); err != nil {
		return nil, err
	}
	return json.Marshal(assertion)
}

// ReauthenticatePasskey verifies the browser's assertion (body, JSON) with one of who's own
// passkeys and returns who marked Reauthenticated; audited and throttled like
// Reauthenticate. EUNAUTHORIZED, ETHROTTLED.
func (p *People) ReauthenticatePasskey(ctx context.Context, who vitalgate.Principal, token string, body io.Reader) (vitalgate.Principal, error) {
	if p.wa == nil {
		return who, errNoPasskeys
	}
	if who.Kind != audit.AgentUser {
		return who, vitalgate.Errorf(vitalgate.EFORBIDDEN, "only a person signed in to the console re-authenticates")
	}
	in := SignIn{ID: who.ID, Source: who.RemoteIP}
	if err := p.gate(ctx, in, "console-reauth"); err != nil {
		return who, err
	}
	sd, err := p.takeSession(ctx, challengeKey("reauth", token))
	if err != nil {
		return who, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBody(io.LimitReader(body, maxPasskeyBody))
	if err != nil {
		return who, vitalgate.Errorf(vitalgate.EINVALID, "the passkey answer could not be read")
	}
	u, err := p.cfg.Store.User(ctx, who.ID)
	if err != nil {
		return who, err
	}
	w, err := newWAUser(u)
	if err != nil {
		return who, err
	}
	cred, err := p.wa.ValidateLogin(w, sd, parsed)
	if err != nil || u.Disabled {
		return who, p.refuse(ctx, u, in, "console-reauth", "passkey refused")
	}
	for i, b := range u.Passkeys {
		var c webauthn.Credential
		if json.Unmarshal(b, &c) == nil && bytes.Equal(c.ID, cred.ID) {
			if nb, err := json.Marshal(cred); err == nil {
				u.Passkeys[i] = nb
			}
		}
	}
	u.UpdatedAt = p.cfg.Now().UTC()
	e := p.entry(u, in, "console-reauth", "re-authenticated with a passkey (user verified)", nil)
	if err := p.cfg.Store.UpdateUser(ctx, u, false, e.Marshal()); err != nil {
		return who, err
	}
	p.cfg.Failures.Succeed(in.ID, in.Source)
	who.Reauthenticated = true
	return who, nil
}
