-- 0028_audit_archive: archive segments of the audit log (vitalgate audit archive).
--
-- audit_segments records each segment: the entries from_idx <= idx < to_idx, whose data was
-- moved into a sealed file (file: its hex SHA-256) that must be kept until keep_until.
-- Segments are never changed or removed.
CREATE TABLE audit_segments (
	id         text        NOT NULL PRIMARY KEY,
	from_idx   bigint      NOT NULL CHECK (from_idx >= 0),
	to_idx     bigint      NOT NULL UNIQUE CHECK (to_idx > from_idx),
	before     timestamptz NOT NULL,
	last_time  timestamptz NOT NULL,
	keep_until timestamptz NOT NULL,
	file       text        NOT NULL,
	created_at timestamptz NOT NULL
);

CREATE TRIGGER audit_segments_append_only BEFORE UPDATE OR DELETE ON audit_segments
	FOR EACH ROW EXECUTE FUNCTION vitalgate_append_only();
CREATE TRIGGER audit_segments_no_truncate BEFORE TRUNCATE ON audit_segments
	FOR EACH STATEMENT EXECUTE FUNCTION vitalgate_append_only();

-- An archived entry keeps its row and its leaf hash, so that the Merkle tree, its root and the
-- proofs of every other entry are unchanged; only its data leaves (an empty bytea: a live
-- entry is never empty). The one update the log allows is that one, for an entry of a
-- recorded segment, keeping its leaf hash. Deletes stay refused.
-- audit_segments is named in the trigger's own schema, whatever the session's search_path.
CREATE FUNCTION vitalgate_audit_archive_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	archived boolean;
BEGIN
	IF NEW.idx = OLD.idx AND length(NEW.data) = 0 AND length(OLD.data) > 0 AND NEW.hash = OLD.hash THEN
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.audit_segments s WHERE $1 >= s.from_idx AND $1 < s.to_idx)', TG_TABLE_SCHEMA)
			INTO archived USING OLD.idx;
		IF archived THEN
			RETURN NEW;
		END IF;
	END IF;
	RAISE EXCEPTION 'table audit_log is append-only: % refused', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION vitalgate_append_only();
CREATE TRIGGER audit_log_archive_only BEFORE UPDATE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION vitalgate_audit_archive_only();
