package postgres

// HotQueries holds the SQL text of the queries whose cost must not grow with stored
// history: the resend check, the searches and the reads every ingest and search makes.
var HotQueries = map[string]string{
	"identifier":             resourcesByIdentifierSQL,
	"patient identifier":     patientsByIdentifierSQL,
	"patient":                resourcesByPatientSQL,
	"code":                   resourcesByCodeSQL,
	"effective asc":          resourcesByEffectiveAscSQL,
	"effective desc":         resourcesByEffectiveDescSQL,
	"effective asc bounded":  resourcesByEffectiveAscBoundedSQL,
	"effective desc bounded": resourcesByEffectiveDescBoundedSQL,
	"resource":               selectResourceSQL,
	"data key":               selectDataKeySQL,
	"device":                 selectDeviceSQL,
	"assignment at":          assignmentAtSQL,
	"client":                 selectClientSQL,
	"audit append":           appendAuditSQL,
	"audit size":             auditSizeSQL,
	"audit entries":          auditEntriesSQL,
}
