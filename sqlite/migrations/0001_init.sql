-- 0001_init: the device registry, API clients, sealed resources and wrapped data keys.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL means "not set".
-- No column holds a plaintext patient identifier: patients appear only as keyed blind
-- indexes (patient_index) and sealed values (patient_sealed, body).

CREATE TABLE devices (
	id                 TEXT    NOT NULL PRIMARY KEY,
	model              TEXT    NOT NULL DEFAULT '',
	status             TEXT    NOT NULL,
	patient_index      BLOB,
	patient_sealed     BLOB,
	created_at         INTEGER NOT NULL,
	updated_at         INTEGER NOT NULL,
	enroll_secret_hash TEXT    NOT NULL DEFAULT '',
	enroll_expires_at  INTEGER
) STRICT;

CREATE TABLE certificates (
	serial     TEXT    NOT NULL PRIMARY KEY,
	device_id  TEXT    NOT NULL REFERENCES devices (id),
	not_before INTEGER,
	not_after  INTEGER,
	issued_at  INTEGER,
	revoked_at INTEGER
) STRICT;

CREATE INDEX certificates_device ON certificates (device_id);

CREATE TABLE clients (
	id          TEXT    NOT NULL PRIMARY KEY,
	role        TEXT    NOT NULL,
	secret_hash TEXT    NOT NULL DEFAULT '',
	scopes      TEXT    NOT NULL DEFAULT '[]', -- JSON array of strings
	created_at  INTEGER NOT NULL,
	disabled    INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT;

CREATE TABLE resources (
	type          TEXT    NOT NULL,
	id            TEXT    NOT NULL,
	version       INTEGER NOT NULL,
	patient_index BLOB,
	effective     INTEGER,
	last_updated  INTEGER,
	body          BLOB    NOT NULL,
	PRIMARY KEY (type, id)
) STRICT;

-- Search by patient and date; page through a patient's resources in id order.
CREATE INDEX resources_patient_effective ON resources (patient_index, effective);
CREATE INDEX resources_patient_id ON resources (patient_index, id, type);

-- The multi-valued code index: one row per coding of a resource's code.
CREATE TABLE resource_codes (
	type       TEXT NOT NULL,
	id         TEXT NOT NULL,
	code_index BLOB NOT NULL,
	PRIMARY KEY (type, id, code_index),
	FOREIGN KEY (type, id) REFERENCES resources (type, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX resource_codes_code ON resource_codes (code_index, id);

CREATE TABLE data_keys (
	patient_index BLOB    NOT NULL PRIMARY KEY,
	wrapped       BLOB    NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT;
