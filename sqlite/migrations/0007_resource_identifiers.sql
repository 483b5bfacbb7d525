-- 0007_resource_identifiers: resources' business identifiers (as blind indexes) in a table of
-- their own, so that finding a resource by identifier is an index seek whatever the patient's
-- history (security review finding 1), and a Patient identifier belongs to one Patient only
-- (finding 5).
CREATE TABLE resource_identifiers (
	type             TEXT NOT NULL,
	id               TEXT NOT NULL,
	patient_index    BLOB,
	identifier_index BLOB NOT NULL,
	PRIMARY KEY (type, id, identifier_index),
	FOREIGN KEY (type, id) REFERENCES resources (type, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- A patient's resource by identifier (the resend check of every observation).
CREATE INDEX resource_identifiers_patient ON resource_identifiers (type, patient_index, identifier_index, id);

-- A Patient identifier names one Patient: a second Patient with it is refused (ECONFLICT).
-- This index also serves Patient?identifier= and HL7 PID-3 resolution.
CREATE UNIQUE INDEX resource_identifiers_patient_unique ON resource_identifiers (identifier_index)
	WHERE type = 'Patient';

-- Existing data. Before this migration identifier indexes were stored in resource_codes,
-- mixed with the code indexes, and the store cannot tell the two apart (they are keyed
-- HMACs; the key is not in the database).
--
-- A Patient's code indexes were all identifier indexes: they move here. Where several Patients
-- share an identifier (possible before this migration: the uniqueness check was
-- check-then-insert), the oldest one (the lowest id: ids begin with the creation time) keeps
-- it, which is the Patient that HL7 PID-3 resolution already chose (it took the lowest id);
-- the others are listed in patient_identifier_conflicts, stay readable by id, and are no
-- longer found by that identifier.
CREATE TABLE patient_identifier_conflicts (
	id               TEXT NOT NULL,
	identifier_index BLOB NOT NULL,
	kept_id          TEXT NOT NULL,
	PRIMARY KEY (id, identifier_index)
) STRICT, WITHOUT ROWID;

INSERT INTO patient_identifier_conflicts (id, identifier_index, kept_id)
SELECT c.id, c.code_index,
	(SELECT min(o.id) FROM resource_codes o WHERE o.type = 'Patient' AND o.code_index = c.code_index)
FROM resource_codes c
WHERE c.type = 'Patient' AND EXISTS (SELECT 1 FROM resource_codes o
	WHERE o.type = 'Patient' AND o.code_index = c.code_index AND o.id < c.id);

INSERT INTO resource_identifiers (type, id, patient_index, identifier_index)
SELECT c.type, c.id, r.patient_index, c.code_index
FROM resource_codes c JOIN resources r ON r.type = c.type AND r.id = c.id
WHERE c.type = 'Patient' AND NOT EXISTS (SELECT 1 FROM resource_codes o
	WHERE o.type = 'Patient' AND o.code_index = c.code_index AND o.id < c.id);

DELETE FROM resource_codes WHERE type = 'Patient'
	AND NOT EXISTS (SELECT 1 FROM patient_identifier_conflicts p WHERE p.id = resource_codes.id);

-- An Observation's code indexes mix its codes with its identifiers: all of them are copied
-- here (and stay in resource_codes), so that a resend of an observation stored before the
-- upgrade is still recognised. The copied code indexes never match an identifier lookup: a
-- code index and an identifier index are keyed in different domains. Other resource types
-- had no identifier indexes.
INSERT INTO resource_identifiers (type, id, patient_index, identifier_index)
SELECT c.type, c.id, r.patient_index, c.code_index
FROM resource_codes c JOIN resources r ON r.type = c.type AND r.id = c.id
WHERE c.type = 'Observation';
