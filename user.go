package vitalgate

import (
	"context"
	"time"
)

// User is a person who signs in to the web console (not an API client): an operator, a
// clinician or an auditor of one site. A user first signs in with the one-time setup code
// `vitalgate user add` printed, chooses a password and enrolls a second factor (TOTP); from
// then on every sign-in takes the password and the second factor.
type User struct {
	ID string
	// Site is the site the user acts within, or AllSites for a deployment-wide auditor.
	Site string
	Role Role
	// PasswordHash is the PHC string of the password (argon2id, or PBKDF2-SHA-256 in a FIPS
	// data dir); empty until the user completes the setup.
	PasswordHash string
	// TOTPSecret is the shared secret of the user's authenticator (RFC 6238); empty until
	// enrolled. TOTPStep is the last time step a code was accepted for (a code is good once).
	TOTPSecret []byte
	TOTPStep   int64
	// SetupHash is the hash of the one-time setup code (empty once used); SetupExpiresAt
	// its end.
	SetupHash      string
	SetupExpiresAt time.Time
	// PatientIndexes are the blind indexes of a clinician's care team.
	PatientIndexes [][]byte
	// Passkeys are the user's WebAuthn credentials, each an opaque JSON document of package
	// auth (public key, credential id, signature counter).
	Passkeys  [][]byte
	Disabled  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Session is a signed-in user's console session. The browser holds a random token; the store
// keeps only its hash, so that a copy of the database opens no session.
type Session struct {
	// IDHash is the hex SHA-256 of the session token.
	IDHash    string
	UserID    string
	Source    string    // the address the session was opened from
	CreatedAt time.Time // the absolute lifetime runs from here
	LastSeen  time.Time // the idle timeout runs from here
}

// UserStore keeps console users and their sessions. Write methods take trailing audit
// entries, appended in the same transaction.
type UserStore interface {
	// CreateUser registers a user. ECONFLICT if the id exists.
	CreateUser(ctx context.Context, u User, audit ...[]byte) error
	// User returns a user by id. ENOTFOUND.
	User(ctx context.Context, id string) (User, error)
	// Users returns every user, ordered by id.
	Users(ctx context.Context) ([]User, error)
	// UpdateUser replaces an existing user's role, site, password hash, TOTP secret, setup
	// code, care team, passkeys and disabled flag (its id, creation time and TOTP step stay); when
	// endSessions is set it also ends every session of the user, in the same transaction.
	// ENOTFOUND.
	UpdateUser(ctx context.Context, u User, endSessions bool, audit ...[]byte) error
	// UseTOTPStep records that a code of time step step was accepted for the user: ECONFLICT
	// unless step is later than the last one recorded (a code is good once, on every node).
	// ENOTFOUND.
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	// CreateSession stores a new session. ECONFLICT if its hash exists.
	CreateSession(ctx context.Context, s Session, audit ...[]byte) error
	// Session returns a session by the hash of its token. ENOTFOUND.
	Session(ctx context.Context, idHash string) (Session, error)
	// TouchSession moves a session's LastSeen to at. ENOTFOUND.
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	// DeleteSession ends a session. ENOTFOUND.
	DeleteSession(ctx context.Context, idHash string, audit ...[]byte) error
	// PutChallenge keeps data under key until expires (a WebAuthn ceremony's state),
	// replacing what the key held.
	PutChallenge(ctx context.Context, key string, data []byte, expires time.Time) error
	// TakeChallenge returns and deletes what key holds: ENOTFOUND when nothing, or only
	// something expired at now.
	TakeChallenge(ctx context.Context, key string, now time.Time) ([]byte, error)
}
