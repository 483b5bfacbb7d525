-- 0007_node_configs: the effective configuration each node served with, recorded by serve at
-- every start (JSON of vitalgate.NodeConfig; settings only, no secrets), for the evidence
-- report. One row per node: a restart replaces it.
CREATE TABLE node_configs (
	node        text        NOT NULL PRIMARY KEY,
	recorded_at timestamptz NOT NULL,
	config      text        NOT NULL
);
