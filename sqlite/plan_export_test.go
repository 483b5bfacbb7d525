package sqlite

import (
	"context"
	"sync/atomic"

	sqlitedriver "modernc.org/sqlite"
)

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

// CountCompiles returns how many times SQLite compiled a statement on db's read connection
// (db must have one reader) while fn ran: an authorizer is consulted at every compilation,
// prepare or re-prepare, and never when a prepared statement simply runs again.
func CountCompiles(ctx context.Context, db *DB, fn func() error) (int, error) {
	var compiles atomic.Int64
	c, err := db.r.Conn(ctx)
	if err != nil {
		return 0, err
	}
	err = c.Raw(func(dc any) error {
		return dc.(sqlitedriver.AuthorizerRegisterer).RegisterAuthorizer(func(action sqlitedriver.AuthorizerActionCode, _, _, _, _ string) sqlitedriver.AuthorizerReturnCode {
			if action == sqlitedriver.AuthSelect { // once per SELECT (and subquery) compiled
				compiles.Add(1)
			}
			return sqlitedriver.AuthorizerOK
		})
	})
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	// Installing the authorizer expired the prepared statements: the first run compiles.
	if err := fn(); err != nil {
		return 0, err
	}
	compiles.Store(0)
	if err := fn(); err != nil {
		return 0, err
	}
	return int(compiles.Load()), nil
}
