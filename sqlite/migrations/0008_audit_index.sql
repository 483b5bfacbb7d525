-- 0008_audit_index: the searchable fields of every audit entry, so that an AuditEvent search
-- reads an index instead of the whole log, and the delivery position of each outbox
-- destination.
--
-- audit_index has one row per audit_log entry that is a JSON object (every entry written by
-- package audit): time is the entry's time as fixed-width text YYYY-MM-DDTHH:MM:SS.nnnnnnnnn
-- (UTC, nine fraction digits, so that text order is time order at full precision), the
-- others are the entry's members ('' when absent). The trigger below fills it in the
-- transaction that appends the entry; the INSERT at the end indexes the entries written
-- before this migration. It is derived data: the Merkle tree and the checkpoints cover
-- audit_log only, and verification never reads audit_index.
CREATE TABLE audit_index (
	idx           INTEGER PRIMARY KEY CHECK (idx >= 0),
	time          TEXT    NOT NULL,
	agent_id      TEXT    NOT NULL,
	action        TEXT    NOT NULL,
	outcome       TEXT    NOT NULL,
	type          TEXT    NOT NULL,
	patient_index TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_index_patient ON audit_index (patient_index, idx);
CREATE INDEX audit_index_agent   ON audit_index (agent_id, idx);
CREATE INDEX audit_index_outcome ON audit_index (outcome, idx);
CREATE INDEX audit_index_action  ON audit_index (action, idx);
CREATE INDEX audit_index_time    ON audit_index (time, idx);

CREATE TRIGGER audit_log_index AFTER INSERT ON audit_log
WHEN substr(CAST(NEW.data AS TEXT), 1, 9) = '{"time":"' AND json_valid(CAST(NEW.data AS TEXT))
BEGIN
	INSERT OR REPLACE INTO audit_index (idx, time, agent_id, action, outcome, type, patient_index)
	SELECT NEW.idx,
		substr(t, 1, 19) || '.' || substr(CASE WHEN substr(t, 20, 1) = '.' THEN substr(t, 21, length(t) - 21) ELSE '' END || '000000000', 1, 9),
		coalesce(json_extract(j, '$.agentId'), ''),
		coalesce(json_extract(j, '$.action'), ''),
		coalesce(json_extract(j, '$.outcome'), ''),
		coalesce(json_extract(j, '$.type'), ''),
		coalesce(json_extract(j, '$.patientIndex'), '')
	FROM (SELECT CAST(NEW.data AS TEXT) AS j, json_extract(CAST(NEW.data AS TEXT), '$.time') AS t);
END;

INSERT INTO audit_index (idx, time, agent_id, action, outcome, type, patient_index)
SELECT idx,
	substr(t, 1, 19) || '.' || substr(CASE WHEN substr(t, 20, 1) = '.' THEN substr(t, 21, length(t) - 21) ELSE '' END || '000000000', 1, 9),
	coalesce(json_extract(j, '$.agentId'), ''),
	coalesce(json_extract(j, '$.action'), ''),
	coalesce(json_extract(j, '$.outcome'), ''),
	coalesce(json_extract(j, '$.type'), ''),
	coalesce(json_extract(j, '$.patientIndex'), '')
FROM (SELECT idx, j, json_extract(j, '$.time') AS t
	FROM (SELECT idx, CAST(data AS TEXT) AS j FROM audit_log)
	WHERE substr(j, 1, 9) = '{"time":"' AND json_valid(j));

-- outbox_cursors: for each outbox destination (e.g. "syslog:collector.example:6514"), the
-- index of the next audit entry to deliver. It only moves forward.
CREATE TABLE outbox_cursors (
	destination TEXT    NOT NULL PRIMARY KEY,
	next        INTEGER NOT NULL CHECK (next >= 0),
	updated_at  INTEGER NOT NULL
) STRICT;
