-- 0028_alerts: detection alerts (package detect). An alert names the rule, who it
-- implicates (device, client, source address) and the evidence the rule keeps (JSON object
-- of counts, networks and reasons; never a clinical value or a patient identifier). Lists
-- read newest first, by status, by device.
CREATE TABLE alerts (
	id            TEXT    NOT NULL PRIMARY KEY,
	rule          TEXT    NOT NULL,
	rules_version INTEGER NOT NULL,
	severity      TEXT    NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
	category      TEXT    NOT NULL,
	description   TEXT    NOT NULL DEFAULT '',
	device_id     TEXT    NOT NULL DEFAULT '',
	client_id     TEXT    NOT NULL DEFAULT '',
	source        TEXT    NOT NULL DEFAULT '',
	site          TEXT    NOT NULL DEFAULT '',
	window_from   INTEGER NOT NULL,
	window_to     INTEGER NOT NULL,
	evidence_json TEXT    NOT NULL DEFAULT '{}',
	status        TEXT    NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
	quarantined   INTEGER NOT NULL DEFAULT 0 CHECK (quarantined IN (0, 1)),
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	updated_by    TEXT    NOT NULL DEFAULT '',
	note          TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX alerts_created ON alerts (created_at DESC, id DESC);
CREATE INDEX alerts_status_created ON alerts (status, created_at DESC);
CREATE INDEX alerts_device_created ON alerts (device_id, created_at DESC);
