package sqlite

// MapError exposes mapError to the external tests.
var MapError = mapError

// ExplainResourceQueries holds EXPLAIN QUERY PLAN of each Resources query variant.
var ExplainResourceQueries = map[string]string{
	"patient": "EXPLAIN QUERY PLAN " + resourcesByPatientSQL,
	"code":    "EXPLAIN QUERY PLAN " + resourcesByCodeSQL,
	"type":    "EXPLAIN QUERY PLAN " + resourcesByTypeSQL,
	"all":     "EXPLAIN QUERY PLAN " + resourcesAllSQL,
}
