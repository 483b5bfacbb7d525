-- 0026_users: people of the web console (package auth) and their sessions. A user's
-- password is stored only as a hash, the one-time setup code only as a hash, the care team
-- as a JSON array of base64 blind indexes. A session is kept by the SHA-256 of its token
-- (hex), so that a copy of the database opens no session; every node reads the same rows,
-- and a deleted row ends the session everywhere. A user's passkeys (WebAuthn credentials:
-- public keys, ids, counters) are a JSON array of the credential documents.
CREATE TABLE users (
	id               text COLLATE "C" NOT NULL PRIMARY KEY,
	site             text        NOT NULL,
	role             text        NOT NULL,
	password_hash    text        NOT NULL DEFAULT '',
	totp_secret      bytea,
	totp_step        bigint      NOT NULL DEFAULT 0,
	setup_hash       text        NOT NULL DEFAULT '',
	setup_expires_at timestamptz,
	patient_indexes  text        NOT NULL DEFAULT '[]',
	passkeys         text        NOT NULL DEFAULT '[]',
	disabled         boolean     NOT NULL DEFAULT false,
	created_at       timestamptz NOT NULL,
	updated_at       timestamptz NOT NULL
);

CREATE TABLE user_sessions (
	id_hash    text        NOT NULL PRIMARY KEY,
	user_id    text COLLATE "C" NOT NULL REFERENCES users (id),
	source     text        NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	last_seen  timestamptz NOT NULL
);

CREATE INDEX user_sessions_user ON user_sessions (user_id);

-- A WebAuthn ceremony's challenge between its two requests, by the hash of the browser's
-- session or pre-session token; taken (deleted) once.
CREATE TABLE user_challenges (
	key        text        NOT NULL PRIMARY KEY,
	data       text        NOT NULL,
	expires_at timestamptz NOT NULL
);
