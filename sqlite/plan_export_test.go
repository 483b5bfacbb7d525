package sqlite

// ExplainHotQueries holds EXPLAIN QUERY PLAN of the queries every ingest or search runs
// (beside ExplainResourceQueries): their cost must not grow with stored history.
var ExplainHotQueries = map[string]string{
	"effective asc":  "EXPLAIN QUERY PLAN " + resourcesByEffectiveAscSQL,
	"effective desc": "EXPLAIN QUERY PLAN " + resourcesByEffectiveDescSQL,
	// With a date bound (the search of a patient's last 24 h).
	"effective asc bounded":  "EXPLAIN QUERY PLAN " + resourcesByEffectiveAscBoundedSQL,
	"effective desc bounded": "EXPLAIN QUERY PLAN " + resourcesByEffectiveDescBoundedSQL,
	"resource":               "EXPLAIN QUERY PLAN " + selectResourceSQL,
	"data key":               "EXPLAIN QUERY PLAN " + selectDataKeySQL,
	"device":                 "EXPLAIN QUERY PLAN " + selectDeviceSQL,
	"assignment at":          "EXPLAIN QUERY PLAN " + assignmentAtSQL,
	"client":                 "EXPLAIN QUERY PLAN " + selectClientSQL,
}

