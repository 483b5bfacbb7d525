-- 0014_updates: the update repository (The Update Framework): signed metadata versions,
-- releases of device models and their target files, kept in chunks of at most 1 MiB so
-- that every node serves them and none holds a whole image in memory.
CREATE TABLE update_metadata (
	role       TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	data       BLOB    NOT NULL,
	expires_at INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (role, version)
) STRICT;

CREATE TABLE update_releases (
	model      TEXT    NOT NULL,
	version    TEXT    NOT NULL,
	target     TEXT    NOT NULL UNIQUE,
	length     INTEGER NOT NULL,
	sha256     BLOB    NOT NULL,
	sbom       BLOB,
	live       INTEGER NOT NULL DEFAULT 0,
	pending    BLOB,
	signed     INTEGER NOT NULL DEFAULT 0,
	needed     INTEGER NOT NULL DEFAULT 0,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	live_at    INTEGER,
	PRIMARY KEY (model, version)
) STRICT;

CREATE TABLE update_chunks (
	model   TEXT    NOT NULL,
	version TEXT    NOT NULL,
	seq     INTEGER NOT NULL,
	data    BLOB    NOT NULL,
	PRIMARY KEY (model, version, seq),
	FOREIGN KEY (model, version) REFERENCES update_releases (model, version)
) STRICT;
