-- 0006_sites: sites (tenants). One deployment serves several hospitals or facilities, and
-- every device, client, resource, data key and audit entry belongs to one site. Everything
-- that exists when this migration runs moves to the site 'default', so that a deployment of
-- one site notices nothing.
CREATE TABLE sites (
	id         text COLLATE "C" NOT NULL PRIMARY KEY,
	name       text        NOT NULL,
	own_keys   boolean     NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL
);

INSERT INTO sites (id, name, own_keys, created_at) VALUES ('default', 'Default site', false, now());

-- The patient-binding policy of each device model (devices.model): 'assigned' (one patient
-- at a time, the rule before this migration, and the policy of a model not listed here) or
-- 'identified' (a shared device: each message names its patient, of the device's site).
CREATE TABLE device_models (
	id         text COLLATE "C" NOT NULL PRIMARY KEY,
	binding    text        NOT NULL CHECK (binding IN ('assigned', 'identified')),
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
);

-- The site of every record; devices, resources and data keys name an existing site.
ALTER TABLE devices ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT 'default' REFERENCES sites (id);
ALTER TABLE resources ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT 'default' REFERENCES sites (id);
ALTER TABLE resource_identifiers ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE data_keys ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT 'default' REFERENCES sites (id);

-- A client acts within one site. Existing auditors become deployment-wide ('*'): they saw
-- every entry before, and still do; every other client is the default site's.
ALTER TABLE clients ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT 'default';
UPDATE clients SET site = '*' WHERE role = 'auditor';

-- Patient identifiers are unique per site: two hospitals may both have MRN 12345.
DROP INDEX resource_identifiers_patient_unique;
CREATE UNIQUE INDEX resource_identifiers_patient_unique ON resource_identifiers (site, identifier_index)
	WHERE type = 'Patient';

-- The audit index keeps each entry's site (its "site" member; '' for an entry of the whole
-- deployment), so that a site auditor's search reads its site's entries only. Entries
-- written before this migration are the default site's (derived data: the entries
-- themselves, the Merkle tree and the checkpoints do not change).
ALTER TABLE audit_index ADD COLUMN site text COLLATE "C" NOT NULL DEFAULT '';
UPDATE audit_index SET site = 'default';
CREATE INDEX audit_index_site ON audit_index (site, idx);

CREATE OR REPLACE FUNCTION vitalgate_audit_index() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO audit_index (idx, time, agent_id, action, outcome, type, patient_index, site)
	SELECT e.idx, vitalgate_audit_time(e.j->>'time'), coalesce(e.j->>'agentId', ''),
		coalesce(e.j->>'action', ''), coalesce(e.j->>'outcome', ''), coalesce(e.j->>'type', ''),
		coalesce(e.j->>'patientIndex', ''), coalesce(e.j->>'site', '')
	FROM (SELECT n.idx, convert_from(n.data, 'UTF8')::jsonb AS j FROM new_rows n
		WHERE substring(n.data FROM 1 FOR 9) = '\x7b2274696d65223a22'::bytea
			AND substring(n.data FROM length(n.data) FOR 1) = '\x7d'::bytea) e
	ON CONFLICT (idx) DO NOTHING;
	RETURN NULL;
END
$$;
