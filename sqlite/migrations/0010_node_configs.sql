-- 0010_node_configs: the effective configuration each node served with, recorded by serve at
-- every start (JSON of vitalgate.NodeConfig; settings only, no secrets), for the evidence
-- report. One row per node: a restart replaces it.
CREATE TABLE node_configs (
	node        TEXT    NOT NULL PRIMARY KEY,
	recorded_at INTEGER NOT NULL,
	config      TEXT    NOT NULL
) STRICT;
