-- 0004_resource_identifiers: resources' business identifiers (as blind indexes) in a table of
-- their own, so that finding a resource by identifier is an index seek whatever the patient's
-- history (security review finding 1), and a Patient identifier belongs to one Patient only
-- (finding 5). Mirrors sqlite/migrations/0007_resource_identifiers.sql.
CREATE TABLE resource_identifiers (
	type             text COLLATE "C" NOT NULL,
	id               text COLLATE "C" NOT NULL,
	patient_index    bytea,
	identifier_index bytea NOT NULL,
	PRIMARY KEY (type, id, identifier_index),
	FOREIGN KEY (type, id) REFERENCES resources (type, id) ON DELETE CASCADE
);

-- A patient's resource by identifier (the resend check of every observation).
CREATE INDEX resource_identifiers_patient ON resource_identifiers (type, patient_index, identifier_index, id);

-- A Patient identifier names one Patient: a second Patient with it is refused (ECONFLICT),
-- also between nodes. This index also serves Patient?identifier= and HL7 PID-3 resolution.
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
	id               text COLLATE "C" NOT NULL,
	identifier_index bytea NOT NULL,
	kept_id          text COLLATE "C" NOT NULL,
	PRIMARY KEY (id, identifier_index)
);

-- One pass over the Patients' code indexes: each identifier's holders, with the oldest holder
-- beside each; the conflicts and the kept identifiers are written from it, and a Patient with
-- no conflict loses its code indexes (the writable CTEs share one snapshot, so the DELETE
-- learns the conflicts from the INSERT's RETURNING, not from the table).
WITH holders AS (
	SELECT c.id, c.code_index, r.patient_index, min(c.id) OVER (PARTITION BY c.code_index) AS kept_id
	FROM resource_codes c JOIN resources r ON r.type = c.type AND r.id = c.id
	WHERE c.type = 'Patient'
), conflicts AS (
	INSERT INTO patient_identifier_conflicts (id, identifier_index, kept_id)
	SELECT id, code_index, kept_id FROM holders WHERE id <> kept_id
	RETURNING id
), kept AS (
	INSERT INTO resource_identifiers (type, id, patient_index, identifier_index)
	SELECT 'Patient', id, patient_index, code_index FROM holders WHERE id = kept_id
)
DELETE FROM resource_codes WHERE type = 'Patient' AND id NOT IN (SELECT id FROM conflicts);

-- An Observation's code indexes mix its codes with its identifiers: all of them are copied
-- here (and stay in resource_codes), so that a resend of an observation stored before the
-- upgrade is still recognised. The copied code indexes never match an identifier lookup: a
-- code index and an identifier index are keyed in different domains. Other resource types
-- had no identifier indexes.
INSERT INTO resource_identifiers (type, id, patient_index, identifier_index)
SELECT c.type, c.id, r.patient_index, c.code_index
FROM resource_codes c JOIN resources r ON r.type = c.type AND r.id = c.id
WHERE c.type = 'Observation';
