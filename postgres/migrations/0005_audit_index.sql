-- 0005_audit_index: the searchable fields of every audit entry, so that an AuditEvent search
-- reads an index instead of the whole log, and the delivery position of each outbox
-- destination.
--
-- audit_index has one row per audit_log entry that is a JSON object (every entry written by
-- package audit): time is the entry's time as fixed-width text YYYY-MM-DDTHH:MM:SS.nnnnnnnnn
-- (UTC, nine fraction digits, so that text order is time order at full precision), the
-- others are the entry's members ('' when absent). Only data that begins with {"time":" and
-- ends with } is indexed, and it must then be JSON (PostgreSQL 15 has no test for it that
-- does not raise): package audit's canonical encoding always is. A statement trigger fills it in the
-- transaction that appends the entries; the INSERT at the end indexes the entries written
-- before this migration. It is derived data: the Merkle tree and the checkpoints cover
-- audit_log only, and verification never reads audit_index.
CREATE TABLE audit_index (
	idx           bigint NOT NULL PRIMARY KEY CHECK (idx >= 0),
	time          text   NOT NULL COLLATE "C",
	agent_id      text   NOT NULL COLLATE "C",
	action        text   NOT NULL COLLATE "C",
	outcome       text   NOT NULL COLLATE "C",
	type          text   NOT NULL COLLATE "C",
	patient_index text   NOT NULL COLLATE "C"
);

CREATE INDEX audit_index_patient ON audit_index (patient_index, idx);
CREATE INDEX audit_index_agent   ON audit_index (agent_id, idx);
CREATE INDEX audit_index_outcome ON audit_index (outcome, idx);
CREATE INDEX audit_index_action  ON audit_index (action, idx);
CREATE INDEX audit_index_time    ON audit_index (time, idx);

-- vitalgate_audit_time turns an entry's RFC 3339 UTC time into the fixed-width form above.
CREATE FUNCTION vitalgate_audit_time(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT substr(t, 1, 19) || '.' || substr(CASE WHEN substr(t, 20, 1) = '.' THEN substr(t, 21, length(t) - 21) ELSE '' END || '000000000', 1, 9)
$$;

CREATE FUNCTION vitalgate_audit_index() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO audit_index (idx, time, agent_id, action, outcome, type, patient_index)
	SELECT e.idx, vitalgate_audit_time(e.j->>'time'), coalesce(e.j->>'agentId', ''),
		coalesce(e.j->>'action', ''), coalesce(e.j->>'outcome', ''), coalesce(e.j->>'type', ''),
		coalesce(e.j->>'patientIndex', '')
	FROM (SELECT n.idx, convert_from(n.data, 'UTF8')::jsonb AS j FROM new_rows n
		WHERE substring(n.data FROM 1 FOR 9) = '\x7b2274696d65223a22'::bytea
			AND substring(n.data FROM length(n.data) FOR 1) = '\x7d'::bytea) e
	ON CONFLICT (idx) DO NOTHING;
	RETURN NULL;
END
$$;

CREATE TRIGGER audit_log_index AFTER INSERT ON audit_log
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION vitalgate_audit_index();

INSERT INTO audit_index (idx, time, agent_id, action, outcome, type, patient_index)
SELECT e.idx, vitalgate_audit_time(e.j->>'time'), coalesce(e.j->>'agentId', ''),
	coalesce(e.j->>'action', ''), coalesce(e.j->>'outcome', ''), coalesce(e.j->>'type', ''),
	coalesce(e.j->>'patientIndex', '')
FROM (SELECT l.idx, convert_from(l.data, 'UTF8')::jsonb AS j FROM audit_log l
	WHERE substring(l.data FROM 1 FOR 9) = '\x7b2274696d65223a22'::bytea
		AND substring(l.data FROM length(l.data) FOR 1) = '\x7d'::bytea) e;

-- outbox_cursors: for each outbox destination (e.g. "syslog:collector.example:6514"), the
-- index of the next audit entry to deliver. It only moves forward.
CREATE TABLE outbox_cursors (
	destination text        NOT NULL PRIMARY KEY,
	next        bigint      NOT NULL CHECK (next >= 0),
	updated_at  timestamptz NOT NULL
);
