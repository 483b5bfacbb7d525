package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	insertUserSQL = `INSERT INTO users (id, site, role, password_hash, totp_secret, totp_step, setup_hash, setup_expires_at,
		patient_indexes, disabled, created_at, updated_at, passkeys) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9, $10, $11, $12)`
	userColumns = `SELECT id, site, role, password_hash, totp_secret, totp_step, setup_hash, setup_expires_at,
		patient_indexes, disabled, created_at, updated_at, passkeys FROM users`
	selectUserSQL  = userColumns + ` WHERE id = $1`
	selectUsersSQL = userColumns + ` ORDER BY id`
	updateUserSQL  = `UPDATE users SET site = $1, role = $2, password_hash = $3, totp_secret = $4, setup_hash = $5,
		setup_expires_at = $6, patient_indexes = $7, disabled = $8, updated_at = $9, passkeys = $11 WHERE id = $10`
	useTOTPStepSQL      = `UPDATE users SET totp_step = $1 WHERE id = $2 AND totp_step < $1`
	userExistsSQL       = `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`
	deleteUserSessions  = `DELETE FROM user_sessions WHERE user_id = $1`
	insertSessionSQL    = `INSERT INTO user_sessions (id_hash, user_id, source, created_at, last_seen) VALUES ($1, $2, $3, $4, $5)`
	selectSessionSQL    = `SELECT id_hash, user_id, source, created_at, last_seen FROM user_sessions WHERE id_hash = $1`
	touchSessionSQL     = `UPDATE user_sessions SET last_seen = $1 WHERE id_hash = $2`
	deleteSessionSQL    = `DELETE FROM user_sessions WHERE id_hash = $1`
	sessionUserExistSQL = `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND disabled = $2)`
	putChallengeSQL     = `INSERT INTO user_challenges (key, data, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`
	takeChallengeSQL  = `DELETE FROM user_challenges WHERE key = $1 RETURNING data, expires_at`
	purgeChallengeSQL = `DELETE FROM user_challenges WHERE expires_at < $1`
)

// CreateUser registers a user and appends the audit entries, in one transaction. ECONFLICT
// if the id exists.
func (s Shared) CreateUser(ctx context.Context, u vitalgate.User, audit ...[]byte) error {
	pidx, keys, err := userJSON(u)
	if err != nil {
		return err
	}
	t := s.b.Time
	created := s.orNow(u.CreatedAt)
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		_, err := tx.Exec(ctx, insertUserSQL, u.ID, u.Site, string(u.Role), u.PasswordHash, u.TOTPSecret, u.SetupHash,
			t(u.SetupExpiresAt), pidx, u.Disabled, t(created), t(s.orNow(u.UpdatedAt)), keys)
		return s.b.MapError(err, "user")
	})
}

// userJSON encodes a user's care team and passkeys for their columns.
func userJSON(u vitalgate.User) (string, string, error) {
	pidx, err := json.Marshal(nonNil(u.PatientIndexes))
	if err != nil {
		return "", "", vitalgate.Internal(err, "user care team")
	}
	keys, err := json.Marshal(nonNil(u.Passkeys))
	if err != nil {
		return "", "", vitalgate.Internal(err, "user passkeys")
	}
	return string(pidx), string(keys), nil
}

func nonNil(b [][]byte) [][]byte {
	if b == nil {
		return [][]byte{}
	}
	return b
}

func scanUser(r rowiter.Scanner) (vitalgate.User, error) {
	var (
		u                       vitalgate.User
		role, pidx, keys        string
		expires, created, moved Time
	)
	if err := r.Scan(&u.ID, &u.Site, &role, &u.PasswordHash, &u.TOTPSecret, &u.TOTPStep, &u.SetupHash, &expires,
		&pidx, &u.Disabled, &created, &moved, &keys); err != nil {
		return u, err
	}
	u.Role, u.SetupExpiresAt, u.CreatedAt, u.UpdatedAt = vitalgate.Role(role), expires.T, created.T, moved.T
	if err := json.Unmarshal([]byte(pidx), &u.PatientIndexes); err != nil {
		return u, vitalgate.Internal(err, "user care team")
	}
	if len(u.PatientIndexes) == 0 {
		u.PatientIndexes = nil
	}
	if err := json.Unmarshal([]byte(keys), &u.Passkeys); err != nil {
		return u, vitalgate.Internal(err, "user passkeys")
	}
	if len(u.Passkeys) == 0 {
		u.Passkeys = nil
	}
	if len(u.TOTPSecret) == 0 {
		u.TOTPSecret = nil
	}
	return u, nil
}

// User returns a user by id. ENOTFOUND.
func (s Shared) User(ctx context.Context, id string) (vitalgate.User, error) {
	return get(ctx, s, "user", scanUser, selectUserSQL, id)
}

// Users returns every user, ordered by id (byte order on both stores).
func (s Shared) Users(ctx context.Context) ([]vitalgate.User, error) {
	return collect(ctx, s, "users", scanUser, selectUsersSQL)
}

// UpdateUser replaces an existing user (all but its id, creation time and TOTP step), ends
// its sessions when endSessions is set, and appends the audit entries, in one transaction.
// ENOTFOUND.
func (s Shared) UpdateUser(ctx context.Context, u vitalgate.User, endSessions bool, audit ...[]byte) error {
	pidx, keys, err := userJSON(u)
	if err != nil {
		return err
	}
	t := s.b.Time
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		n, err := tx.Exec(ctx, updateUserSQL, u.Site, string(u.Role), u.PasswordHash, u.TOTPSecret, u.SetupHash,
			t(u.SetupExpiresAt), pidx, u.Disabled, t(s.orNow(u.UpdatedAt)), u.ID, keys)
		if err != nil {
			return s.b.MapError(err, "user")
		}
		if n == 0 {
			return vitalgate.NotFound("user", nil)
		}
		if endSessions {
			_, err = tx.Exec(ctx, deleteUserSessions, u.ID)
		}
		return s.b.MapError(err, "user sessions")
	})
}

// UseTOTPStep records that a code of time step step was accepted for the user. ECONFLICT
// unless step is later than the last one recorded, ENOTFOUND.
func (s Shared) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	return s.b.InTx(ctx, nil, func(tx Conn) error {
		return s.conditional(ctx, tx, "user", userExistsSQL, userID, func() (int64, error) {
			return tx.Exec(ctx, useTOTPStepSQL, step, userID)
		})
	})
}

// CreateSession stores a new session of an enabled user and appends the audit entries, in
// one transaction. ECONFLICT if its hash exists, ENOTFOUND when no enabled user has its id.
func (s Shared) CreateSession(ctx context.Context, ss vitalgate.Session, audit ...[]byte) error {
	t := s.b.Time
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		var ok bool
		if err := tx.QueryRow(ctx, sessionUserExistSQL, ss.UserID, false).Scan(&ok); err != nil {
			return s.b.MapError(err, "user")
		}
		if !ok {
			return vitalgate.NotFound("user", nil)
		}
		_, err := tx.Exec(ctx, insertSessionSQL, ss.IDHash, ss.UserID, ss.Source, t(s.orNow(ss.CreatedAt)), t(s.orNow(ss.LastSeen)))
		return s.b.MapError(err, "session")
	})
}

func scanSession(r rowiter.Scanner) (vitalgate.Session, error) {
	var (
		ss            vitalgate.Session
		created, seen Time
	)
	err := r.Scan(&ss.IDHash, &ss.UserID, &ss.Source, &created, &seen)
	ss.CreatedAt, ss.LastSeen = created.T, seen.T
	return ss, err
}

// Session returns a session by the hash of its token. ENOTFOUND.
func (s Shared) Session(ctx context.Context, idHash string) (vitalgate.Session, error) {
	return get(ctx, s, "session", scanSession, selectSessionSQL, idHash)
}

// TouchSession moves a session's LastSeen to at. ENOTFOUND.
func (s Shared) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	n, err := s.b.Writer().Exec(ctx, touchSessionSQL, s.b.Time(s.orNow(at)), idHash)
	if err != nil {
		return s.b.MapError(err, "session")
	}
	if n == 0 {
		return vitalgate.NotFound("session", nil)
	}
	return nil
}

// DeleteSession ends a session and appends the audit entries, in one transaction. ENOTFOUND.
func (s Shared) DeleteSession(ctx context.Context, idHash string, audit ...[]byte) error {
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		n, err := tx.Exec(ctx, deleteSessionSQL, idHash)
		if err != nil {
			return s.b.MapError(err, "session")
		}
		if n == 0 {
			return vitalgate.NotFound("session", nil)
		}
		return nil
	})
}

// PutChallenge keeps data under key until expires, replacing what the key held.
func (s Shared) PutChallenge(ctx context.Context, key string, data []byte, expires time.Time) error {
	_, err := s.b.Writer().Exec(ctx, putChallengeSQL, key, string(data), s.b.Time(expires))
	return s.b.MapError(err, "challenge")
}

// TakeChallenge returns and deletes what key holds: ENOTFOUND when nothing, or only
// something expired at now. Every challenge expired at now is deleted on the way.
func (s Shared) TakeChallenge(ctx context.Context, key string, now time.Time) ([]byte, error) {
	var (
		data    string
		expires Time
	)
	err := s.b.InTx(ctx, nil, func(tx Conn) error {
		if err := tx.QueryRow(ctx, takeChallengeSQL, key).Scan(&data, &expires); err != nil {
			return s.b.MapError(err, "challenge")
		}
		_, err := tx.Exec(ctx, purgeChallengeSQL, s.b.Time(now))
		return s.b.MapError(err, "challenges")
	})
	if err != nil {
		return nil, err
	}
	if !now.Before(expires.T) {
		return nil, vitalgate.NotFound("challenge", nil)
	}
	return []byte(data), nil
}

var _ vitalgate.UserStore = Shared{}
