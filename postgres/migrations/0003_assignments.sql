-- 0003_assignments: the history of device-to-patient assignments, so that a reading is bound
-- to the patient the device was assigned to when it was measured (not when it arrives).
-- valid_to NULL is the current assignment. The primary key (device_id, valid_from) is the
-- index AssignmentAt seeks: the latest start at or before t, one row, whatever the history's
-- length.
CREATE TABLE device_assignments (
	device_id      text COLLATE "C" NOT NULL REFERENCES devices (id),
	valid_from     timestamptz NOT NULL,
	valid_to       timestamptz,
	patient_index  bytea       NOT NULL,
	patient_sealed bytea,
	PRIMARY KEY (device_id, valid_from),
	CHECK (valid_to IS NULL OR valid_to > valid_from)
);

-- Every currently assigned device gets its current assignment. Its start is the device row's
-- updated_at: earlier history was overwritten, and updated_at is the latest moment at which
-- the patient may have been set (every assignment, enrollment and revocation sets it), so the
-- current patient is certainly assigned from then on. Readings measured before it are not
-- attributed to a patient the device may not have had then; they are refused instead.
INSERT INTO device_assignments (device_id, valid_from, valid_to, patient_index, patient_sealed)
SELECT id, updated_at, NULL, patient_index, patient_sealed FROM devices
WHERE patient_index IS NOT NULL AND length(patient_index) > 0;
