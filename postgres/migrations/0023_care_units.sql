-- 0023_care_units: the care units (wards) of a site, the unit a device is placed in and the
-- unit a patient is admitted to (by blind index). A shared device placed in a unit writes
-- only for the patients admitted to it.
CREATE TABLE care_units (
	site       text        NOT NULL REFERENCES sites (id),
	id         text        NOT NULL,
	name       text        NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (site, id)
);

CREATE TABLE device_units (
	device_id text NOT NULL PRIMARY KEY REFERENCES devices (id),
	site      text NOT NULL,
	unit      text NOT NULL,
	FOREIGN KEY (site, unit) REFERENCES care_units (site, id)
);

CREATE TABLE patient_units (
	site          text        NOT NULL,
	patient_index bytea       NOT NULL,
	unit          text        NOT NULL,
	admitted_at   timestamptz NOT NULL,
	PRIMARY KEY (site, patient_index),
	FOREIGN KEY (site, unit) REFERENCES care_units (site, id)
);
