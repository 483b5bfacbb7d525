-- 0033_subscriptions: topic-based subscriptions (package subscription) and their numbered
-- events, derived from the audit log (cursor: the next entry to examine). An event names
-- the resource and its patient's blind index, never clinical data.
CREATE TABLE subscriptions (
	id            TEXT    NOT NULL PRIMARY KEY,
	client_id     TEXT    NOT NULL,
	site          TEXT    NOT NULL DEFAULT '',
	topic         TEXT    NOT NULL,
	patient_index BLOB,
	endpoint      TEXT    NOT NULL,
	payload       TEXT    NOT NULL CHECK (payload IN ('id-only', 'full-resource')),
	status        TEXT    NOT NULL CHECK (status IN ('requested', 'active', 'error', 'off')),
	error         TEXT    NOT NULL DEFAULT '',
	audit_cursor  INTEGER NOT NULL CHECK (audit_cursor >= 0),
	events        INTEGER NOT NULL DEFAULT 0 CHECK (events >= 0),
	delivered     INTEGER NOT NULL DEFAULT 0 CHECK (delivered >= 0),
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE subscription_events (
	subscription_id TEXT    NOT NULL REFERENCES subscriptions (id),
	number          INTEGER NOT NULL CHECK (number > 0),
	resource        TEXT    NOT NULL,
	patient_index   BLOB,
	at              INTEGER NOT NULL,
	PRIMARY KEY (subscription_id, number)
) STRICT;
