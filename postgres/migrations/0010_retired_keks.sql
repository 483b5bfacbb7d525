-- 0010_retired_keks: key-encryption keys retired by an erasure (ids only, never keys). No
-- data key may be stored under a retired KEK, and every node drops it.
CREATE TABLE retired_keks (
	keyring    text COLLATE "C" NOT NULL, -- '' for the deployment's keyring, else the site id
	kek        text COLLATE "C" NOT NULL,
	retired_at timestamptz NOT NULL,
	PRIMARY KEY (keyring, kek)
);
