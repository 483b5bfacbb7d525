-- 0015_rollouts: staged rollouts of approved device software releases (package rollout).
-- A model has at most one live rollout (active, paused, waiting); the offer path reads the
-- model's newest rollout, the device's row in it, its installed version and its site's
-- maintenance window, each through an index.
CREATE TABLE rollouts (
	id            TEXT    NOT NULL PRIMARY KEY,
	model         TEXT    NOT NULL,
	version       TEXT    NOT NULL,
	target        TEXT    NOT NULL,
	critical      INTEGER NOT NULL DEFAULT 0 CHECK (critical IN (0, 1)),
	state         TEXT    NOT NULL CHECK (state IN ('active', 'paused', 'waiting', 'completed', 'aborted')),
	reason        TEXT    NOT NULL DEFAULT '',
	groups_json   TEXT    NOT NULL,
	current_group INTEGER NOT NULL,
	health_window INTEGER NOT NULL,
	silence       INTEGER NOT NULL,
	created_by    TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	revision      INTEGER NOT NULL DEFAULT 1
) STRICT;

CREATE INDEX rollouts_model_created ON rollouts (model, created_at DESC, id DESC);
CREATE UNIQUE INDEX rollouts_model_live ON rollouts (model) WHERE state IN ('active', 'paused', 'waiting');

CREATE TABLE rollout_devices (
	rollout_id   TEXT    NOT NULL REFERENCES rollouts (id),
	device_id    TEXT    NOT NULL,
	group_index  INTEGER NOT NULL,
	state        TEXT    NOT NULL,
	reason       TEXT    NOT NULL DEFAULT '',
	installed_at INTEGER,
	healthy_at   INTEGER,
	done_at      INTEGER,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (rollout_id, device_id)
) STRICT;

CREATE TABLE device_versions (
	device_id  TEXT    NOT NULL PRIMARY KEY,
	model      TEXT    NOT NULL DEFAULT '',
	version    TEXT    NOT NULL,
	previous   TEXT    NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE maintenance_windows (
	site       TEXT    NOT NULL PRIMARY KEY,
	start_min  INTEGER NOT NULL CHECK (start_min >= 0 AND start_min < 1440),
	length_min INTEGER NOT NULL CHECK (length_min > 0 AND length_min <= 1440),
	days       TEXT    NOT NULL DEFAULT '',
	zone       TEXT    NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL
) STRICT;
