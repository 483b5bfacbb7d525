package sqlite

// MapError exposes mapError to the external tests.
var MapError = mapError

// ExplainResourceQueries holds EXPLAIN QUERY PLAN of each Resources query variant.
var ExplainResourceQueries = map[string]string{
	"patient": "EXPLAIN QUERY PLAN " + resourcesByPatientSQL,
	"code":    "EXPLAIN QUERY PLAN " + resourcesByCodeSQL,
	// The resend check of every observation and the Patient identifier lookup.
	"identifier":         "EXPLAIN QUERY PLAN " + resourcesByIdentifierSQL,
	"patient identifier": "EXPLAIN QUERY PLAN " + patientsByIdentifierSQL,
	"type":               "EXPLAIN QUERY PLAN " + resourcesByTypeSQL,
	"all":                "EXPLAIN QUERY PLAN " + resourcesAllSQL,
}

// ExplainAuditQueries holds EXPLAIN QUERY PLAN of the audit log queries whose cost must not
// grow with the size of the log.
var ExplainAuditQueries = map[string]string{
	"insert":  "EXPLAIN QUERY PLAN " + insertAuditSQL,
	"size":    "EXPLAIN QUERY PLAN " + auditSizeSQL,
	"entries": "EXPLAIN QUERY PLAN " + auditEntriesSQL,
}
