-- 0001_init: the device registry, API clients and their care teams, one-time nonces, sealed
-- resources with their code indexes, wrapped data keys, and the audit log.
--
-- Mirrors the SQLite schema (sqlite/migrations). Times are timestamptz (microseconds, UTC);
-- NULL means "not set". Blobs are bytea. Text keys use the "C" collation, so that ids sort
-- bytewise as in SQLite and paging by id is independent of the database's locale.
-- No column holds a plaintext patient identifier: patients appear only as keyed blind
-- indexes (patient_index) and sealed values (patient_sealed, body).

CREATE TABLE devices (
	id                 text COLLATE "C" NOT NULL PRIMARY KEY,
	model              text        NOT NULL DEFAULT '',
	status             text        NOT NULL,
	patient_index      bytea,
	patient_sealed     bytea,
	created_at         timestamptz NOT NULL,
	updated_at         timestamptz NOT NULL,
	enroll_secret_hash text        NOT NULL DEFAULT '',
	enroll_expires_at  timestamptz
);

CREATE TABLE certificates (
	serial     text COLLATE "C" NOT NULL PRIMARY KEY,
	device_id  text COLLATE "C" NOT NULL REFERENCES devices (id),
	not_before timestamptz,
	not_after  timestamptz,
	issued_at  timestamptz,
	revoked_at timestamptz
);

CREATE INDEX certificates_device ON certificates (device_id);

CREATE TABLE clients (
	id          text COLLATE "C" NOT NULL PRIMARY KEY,
	role        text        NOT NULL,
	secret_hash text        NOT NULL DEFAULT '',
	scopes      text[]      NOT NULL DEFAULT '{}',
	created_at  timestamptz NOT NULL,
	disabled    boolean     NOT NULL DEFAULT false,
	jwks        bytea
);

-- The patients a clinician cares for, as blind indexes.
CREATE TABLE client_patients (
	client_id     text COLLATE "C" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	patient_index bytea NOT NULL,
	PRIMARY KEY (client_id, patient_index)
);

-- One-time values (client assertion jti) remembered until they expire.
CREATE TABLE nonces (
	key     text COLLATE "C" NOT NULL PRIMARY KEY,
	expires timestamptz NOT NULL
);

CREATE INDEX nonces_expires ON nonces (expires);

CREATE TABLE resources (
	type          text COLLATE "C" NOT NULL,
	id            text COLLATE "C" NOT NULL,
	version       bigint      NOT NULL,
	patient_index bytea,
	effective     timestamptz,
	last_updated  timestamptz,
	body          bytea       NOT NULL,
	PRIMARY KEY (type, id)
);

-- Search by patient and date; page through a patient's resources in id order.
CREATE INDEX resources_patient_effective ON resources (patient_index, effective);
CREATE INDEX resources_patient_id ON resources (patient_index, id, type);
-- A patient's resources of one type by date, oldest first (forward scan) or newest first
-- (backward scan), ties broken by id. NULLS FIRST orders an unset date as SQLite does.
CREATE INDEX resources_patient_type_effective ON resources (patient_index, type, effective NULLS FIRST, id);

-- The multi-valued code index: one row per coding of a resource's code.
CREATE TABLE resource_codes (
	type       text COLLATE "C" NOT NULL,
	id         text COLLATE "C" NOT NULL,
	code_index bytea NOT NULL,
	PRIMARY KEY (type, id, code_index),
	FOREIGN KEY (type, id) REFERENCES resources (type, id) ON DELETE CASCADE
);

CREATE INDEX resource_codes_code ON resource_codes (code_index, id);

CREATE TABLE data_keys (
	patient_index bytea       NOT NULL PRIMARY KEY,
	wrapped       bytea       NOT NULL,
	created_at    timestamptz NOT NULL
);

-- The audit log: entry idx is leaf idx of the Merkle tree, data its canonical encoding, hash
-- its RFC 6962 leaf hash as computed when it was appended (so that verification names the
-- exact entry whose bytes changed afterwards). Indexes are dense and in commit order because
-- every appender first updates the single audit_head row (whose lock it holds until it
-- commits) and takes its range from the new size.
CREATE TABLE audit_log (
	idx  bigint NOT NULL PRIMARY KEY CHECK (idx >= 0),
	data bytea  NOT NULL,
	hash bytea  NOT NULL CHECK (length(hash) = 32)
);

CREATE TABLE audit_head (
	one  boolean NOT NULL PRIMARY KEY DEFAULT true CHECK (one),
	size bigint  NOT NULL CHECK (size >= 0)
);

INSERT INTO audit_head (one, size) VALUES (true, 0);

CREATE TABLE audit_checkpoints (
	size       bigint      NOT NULL PRIMARY KEY CHECK (size >= 0),
	note       bytea       NOT NULL,
	created_at timestamptz NOT NULL
);

-- Append-only: entries and checkpoints are never changed or removed, and the head never
-- shrinks or disappears.
CREATE FUNCTION vitalgate_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
		USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION vitalgate_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION vitalgate_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION vitalgate_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION vitalgate_append_only();

CREATE FUNCTION vitalgate_audit_head_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP <> 'UPDATE' OR NEW.size < OLD.size OR NEW.one <> OLD.one THEN
		RAISE EXCEPTION 'audit_head only grows: % refused', TG_OP
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	RETURN NEW;
END
$$;

CREATE TRIGGER audit_head_grows BEFORE UPDATE OR DELETE ON audit_head
	FOR EACH ROW EXECUTE FUNCTION vitalgate_audit_head_grows();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
	FOR EACH STATEMENT EXECUTE FUNCTION vitalgate_append_only();
