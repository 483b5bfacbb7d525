-- 0026_care_units: the care units (wards) of a site, the unit a device is placed in and the
-- unit a patient is admitted to (by blind index). A shared device placed in a unit writes
-- only for the patients admitted to it.
CREATE TABLE care_units (
	site       TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (site, id)
) STRICT;

CREATE TABLE device_units (
	device_id TEXT NOT NULL PRIMARY KEY REFERENCES devices (id),
	site      TEXT NOT NULL,
	unit      TEXT NOT NULL,
	FOREIGN KEY (site, unit) REFERENCES care_units (site, id)
) STRICT;

CREATE TABLE patient_units (
	site          TEXT    NOT NULL,
	patient_index BLOB    NOT NULL,
	unit          TEXT    NOT NULL,
	admitted_at   INTEGER NOT NULL,
	PRIMARY KEY (site, patient_index),
	FOREIGN KEY (site, unit) REFERENCES care_units (site, id)
) STRICT;
