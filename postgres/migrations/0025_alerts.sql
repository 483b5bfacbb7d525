-- 0025_alerts: detection alerts (package detect). An alert names the rule, who it
-- implicates (device, client, source address) and the evidence the rule keeps (JSON object
-- of counts, networks and reasons; never a clinical value or a patient identifier). Lists
-- read newest first, by status, by device.
CREATE TABLE alerts (
	id            text COLLATE "C" NOT NULL PRIMARY KEY,
	rule          text        NOT NULL,
	rules_version integer     NOT NULL,
	severity      text        NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
	category      text        NOT NULL,
	description   text        NOT NULL DEFAULT '',
	device_id     text COLLATE "C" NOT NULL DEFAULT '',
	client_id     text        NOT NULL DEFAULT '',
	source        text        NOT NULL DEFAULT '',
	site          text        NOT NULL DEFAULT '',
	window_from   timestamptz NOT NULL,
	window_to     timestamptz NOT NULL,
	evidence_json text        NOT NULL DEFAULT '{}',
	status        text        NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
	quarantined   boolean     NOT NULL DEFAULT false,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	updated_by    text        NOT NULL DEFAULT '',
	note          text        NOT NULL DEFAULT ''
);

CREATE INDEX alerts_created ON alerts (created_at DESC, id DESC);
CREATE INDEX alerts_status_created ON alerts (status, created_at DESC);
CREATE INDEX alerts_device_created ON alerts (device_id, created_at DESC);
