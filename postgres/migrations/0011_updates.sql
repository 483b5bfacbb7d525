-- 0011_updates: the update repository (The Update Framework): signed metadata versions,
-- releases of device models and their target files, kept in chunks of at most 1 MiB so
-- that every node serves them and none holds a whole image in memory.
CREATE TABLE update_metadata (
	role       text COLLATE "C" NOT NULL,
	version    bigint      NOT NULL,
	data       bytea       NOT NULL,
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (role, version)
);

CREATE TABLE update_releases (
	model      text COLLATE "C" NOT NULL,
	version    text COLLATE "C" NOT NULL,
	target     text COLLATE "C" NOT NULL UNIQUE,
	length     bigint      NOT NULL,
	sha256     bytea       NOT NULL,
	sbom       bytea,
	live       boolean     NOT NULL DEFAULT false,
	pending    bytea,
	signed     integer     NOT NULL DEFAULT 0,
	needed     integer     NOT NULL DEFAULT 0,
	created_by text        NOT NULL,
	created_at timestamptz NOT NULL,
	live_at    timestamptz,
	PRIMARY KEY (model, version)
);

CREATE TABLE update_chunks (
	model   text COLLATE "C" NOT NULL,
	version text COLLATE "C" NOT NULL,
	seq     integer NOT NULL,
	data    bytea   NOT NULL,
	PRIMARY KEY (model, version, seq),
	FOREIGN KEY (model, version) REFERENCES update_releases (model, version)
);
