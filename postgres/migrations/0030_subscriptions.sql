-- 0030_subscriptions: topic-based subscriptions (package subscription) and their numbered
-- events, derived from the audit log (cursor: the next entry to examine). An event names
-- the resource and its patient's blind index, never clinical data.
CREATE TABLE subscriptions (
	id            text COLLATE "C" NOT NULL PRIMARY KEY,
	client_id     text COLLATE "C" NOT NULL,
	site          text COLLATE "C" NOT NULL DEFAULT '',
	topic         text        NOT NULL,
	patient_index bytea,
	endpoint      text COLLATE "C" NOT NULL,
	payload       text        NOT NULL CHECK (payload IN ('id-only', 'full-resource')),
	status        text        NOT NULL CHECK (status IN ('requested', 'active', 'error', 'off')),
	error         text        NOT NULL DEFAULT '',
	audit_cursor  bigint      NOT NULL CHECK (audit_cursor >= 0),
	events        bigint      NOT NULL DEFAULT 0 CHECK (events >= 0),
	delivered     bigint      NOT NULL DEFAULT 0 CHECK (delivered >= 0),
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);

CREATE TABLE subscription_events (
	subscription_id text COLLATE "C" NOT NULL REFERENCES subscriptions (id),
	number          bigint      NOT NULL CHECK (number > 0),
	resource        text        NOT NULL,
	patient_index   bytea,
	at              timestamptz NOT NULL,
	PRIMARY KEY (subscription_id, number)
);
