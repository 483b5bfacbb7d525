-- 0002_clinical_access: client keys and care teams, one-time nonces, date-ordered search.

ALTER TABLE clients ADD COLUMN jwks BLOB;

-- The patients a clinician cares for, as blind indexes.
CREATE TABLE client_patients (
	client_id     TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	patient_index BLOB NOT NULL,
	PRIMARY KEY (client_id, patient_index)
) STRICT, WITHOUT ROWID;

-- One-time values (client assertion jti) remembered until they expire.
CREATE TABLE nonces (
	key     TEXT    NOT NULL PRIMARY KEY,
	expires INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX nonces_expires ON nonces (expires);

-- A patient's resources of one type by date, newest or oldest first, ties broken by id.
CREATE INDEX resources_patient_type_effective ON resources (patient_index, type, effective, id);
