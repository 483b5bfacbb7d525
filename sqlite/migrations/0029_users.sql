-- 0029_users: people of the web console (package auth) and their sessions. A user's
-- password is stored only as a hash, the one-time setup code only as a hash, the care team
-- as a JSON array of base64 blind indexes. A session is kept by the SHA-256 of its token
-- (hex), so that a copy of the database opens no session; every node reads the same rows,
-- and a deleted row ends the session everywhere. A user's passkeys (WebAuthn credentials:
-- public keys, ids, counters) are a JSON array of the credential documents.
CREATE TABLE users (
	id               TEXT    NOT NULL PRIMARY KEY,
	site             TEXT    NOT NULL,
	role             TEXT    NOT NULL,
	password_hash    TEXT    NOT NULL DEFAULT '',
	totp_secret      BLOB,
	totp_step        INTEGER NOT NULL DEFAULT 0,
	setup_hash       TEXT    NOT NULL DEFAULT '',
	setup_expires_at INTEGER,
	patient_indexes  TEXT    NOT NULL DEFAULT '[]',
	passkeys         TEXT    NOT NULL DEFAULT '[]',
	disabled         INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE user_sessions (
	id_hash    TEXT    NOT NULL PRIMARY KEY,
	user_id    TEXT    NOT NULL REFERENCES users (id),
	source     TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
) STRICT;

CREATE INDEX user_sessions_user ON user_sessions (user_id);

-- A WebAuthn ceremony's challenge between its two requests, by the hash of the browser's
-- session or pre-session token; taken (deleted) once.
CREATE TABLE user_challenges (
	key        TEXT    NOT NULL PRIMARY KEY,
	data       TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
