-- 0012_rollouts: staged rollouts of approved device software releases (package rollout).
-- A model has at most one live rollout (active, paused, waiting); the offer path reads the
-- model's newest rollout, the device's row in it, its installed version and its site's
-- maintenance window, each through an index. Durations are microseconds.
CREATE TABLE rollouts (
	id            text COLLATE "C" NOT NULL PRIMARY KEY,
	model         text COLLATE "C" NOT NULL,
	version       text        NOT NULL,
	target        text        NOT NULL,
	critical      boolean     NOT NULL DEFAULT false,
	state         text        NOT NULL CHECK (state IN ('active', 'paused', 'waiting', 'completed', 'aborted')),
	reason        text        NOT NULL DEFAULT '',
	groups_json   text        NOT NULL,
	current_group integer     NOT NULL,
	health_window bigint      NOT NULL,
	silence       bigint      NOT NULL,
	created_by    text        NOT NULL DEFAULT '',
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	revision      bigint      NOT NULL DEFAULT 1
);

CREATE INDEX rollouts_model_created ON rollouts (model, created_at DESC, id DESC);
CREATE UNIQUE INDEX rollouts_model_live ON rollouts (model) WHERE state IN ('active', 'paused', 'waiting');

CREATE TABLE rollout_devices (
	rollout_id   text COLLATE "C" NOT NULL REFERENCES rollouts (id),
	device_id    text COLLATE "C" NOT NULL,
	group_index  integer     NOT NULL,
	state        text        NOT NULL,
	reason       text        NOT NULL DEFAULT '',
	installed_at timestamptz,
	healthy_at   timestamptz,
	done_at      timestamptz,
	updated_at   timestamptz NOT NULL,
	PRIMARY KEY (rollout_id, device_id)
);

CREATE TABLE device_versions (
	device_id  text COLLATE "C" NOT NULL PRIMARY KEY,
	model      text        NOT NULL DEFAULT '',
	version    text    NOT NULL,
	previous   text    NOT NULL DEFAULT '',
	updated_at timestamptz NOT NULL
);

CREATE TABLE maintenance_windows (
	site       text COLLATE "C" NOT NULL PRIMARY KEY,
	start_min  integer     NOT NULL CHECK (start_min >= 0 AND start_min < 1440),
	length_min integer     NOT NULL CHECK (length_min > 0 AND length_min <= 1440),
	days       text        NOT NULL DEFAULT '',
	zone       text        NOT NULL DEFAULT '',
	updated_at timestamptz NOT NULL
);
