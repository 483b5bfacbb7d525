-- 0008_drop_patient_effective: one index fewer per stored resource. resources_patient_effective
-- (patient_index, effective) is served by resources_patient_type_effective (patient_index,
-- type, effective, id), which every search by date walks; no query reads it (the query-plan
-- tests list the index of every hot query).
DROP INDEX IF EXISTS resources_patient_effective;
