-- 0009_sites: sites (tenants). One deployment serves several hospitals or facilities, and
-- every device, client, resource, data key and audit entry belongs to one site. Everything
-- that exists when this migration runs moves to the site 'default', so that a deployment of
-- one site notices nothing.
CREATE TABLE sites (
	id         TEXT    NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	own_keys   INTEGER NOT NULL DEFAULT 0 CHECK (own_keys IN (0, 1)),
	created_at INTEGER NOT NULL
) STRICT;

INSERT INTO sites (id, name, own_keys, created_at)
VALUES ('default', 'Default site', 0, CAST(strftime('%s', 'now') AS INTEGER) * 1000000);

-- The patient-binding policy of each device model (devices.model): 'assigned' (one patient
-- at a time, the rule before this migration, and the policy of a model not listed here) or
-- 'identified' (a shared device: each message names its patient, of the device's site).
CREATE TABLE device_models (
	id         TEXT    NOT NULL PRIMARY KEY,
	binding    TEXT    NOT NULL CHECK (binding IN ('assigned', 'identified')),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

-- The site of every record. SQLite cannot add a column with both a REFERENCES clause and a
-- non-NULL default; the capabilities check that a site exists before they name it.
ALTER TABLE devices ADD COLUMN site TEXT NOT NULL DEFAULT 'default';
ALTER TABLE resources ADD COLUMN site TEXT NOT NULL DEFAULT 'default';
ALTER TABLE resource_identifiers ADD COLUMN site TEXT NOT NULL DEFAULT 'default';
ALTER TABLE data_keys ADD COLUMN site TEXT NOT NULL DEFAULT 'default';

-- A client acts within one site. Existing auditors become deployment-wide ('*'): they saw
-- every entry before, and still do; every other client is the default site's.
ALTER TABLE clients ADD COLUMN site TEXT NOT NULL DEFAULT 'default';
UPDATE clients SET site = '*' WHERE role = 'auditor';

-- Patient identifiers are unique per site: two hospitals may both have MRN 12345.
DROP INDEX resource_identifiers_patient_unique;
CREATE UNIQUE INDEX resource_identifiers_patient_unique ON resource_identifiers (site, identifier_index)
	WHERE type = 'Patient';

-- The audit index keeps each entry's site (its "site" member; '' for an entry of the whole
-- deployment), so that a site auditor's search reads its site's entries only. Entries
-- written before this migration are the default site's (derived data: the entries
-- themselves, the Merkle tree and the checkpoints do not change).
ALTER TABLE audit_index ADD COLUMN site TEXT NOT NULL DEFAULT '';
UPDATE audit_index SET site = 'default';
CREATE INDEX audit_index_site ON audit_index (site, idx);

DROP TRIGGER audit_log_index;
CREATE TRIGGER audit_log_index AFTER INSERT ON audit_log
WHEN substr(CAST(NEW.data AS TEXT), 1, 9) = '{"time":"' AND json_valid(CAST(NEW.data AS TEXT))
BEGIN
	INSERT OR REPLACE INTO audit_index (idx, time, agent_id, action, outcome, type, patient_index, site)
	SELECT NEW.idx,
		substr(t, 1, 19) || '.' || substr(CASE WHEN substr(t, 20, 1) = '.' THEN substr(t, 21, length(t) - 21) ELSE '' END || '000000000', 1, 9),
		coalesce(json_extract(j, '$.agentId'), ''),
		coalesce(json_extract(j, '$.action'), ''),
		coalesce(json_extract(j, '$.outcome'), ''),
		coalesce(json_extract(j, '$.type'), ''),
		coalesce(json_extract(j, '$.patientIndex'), ''),
		coalesce(json_extract(j, '$.site'), '')
	FROM (SELECT CAST(NEW.data AS TEXT) AS j, json_extract(CAST(NEW.data AS TEXT), '$.time') AS t);
END;
