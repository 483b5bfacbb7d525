// Package rowiter is the row loop both stores read query results with: it scans each row of
// a result set, *sql.Rows (database/sql, package sqlite) and pgx.Rows (package postgres)
// alike, hands each value on, and keeps the caller's callback errors apart from the
// database's, which the store maps. Closing the rows stays with the caller: the two drivers'
// Close methods differ.
package rowiter

import "github.com/vitalgate/vitalgate"

// Scanner reads the current row's columns into dest: *sql.Row, *sql.Rows, pgx.Row and
// pgx.Rows all are Scanners, so one scan function serves a single-row query and a loop.
type Scanner interface {
	Scan(dest ...any) error
}

// Rows is a result set as both *sql.Rows and pgx.Rows present it.
type Rows interface {
	Scanner
	// Next advances to the next row and reports whether there is one.
	Next() bool
	// Err returns the error, if any, that ended the iteration.
	Err() error
}

// Each scans every row of rs with scan and calls fn with the value, in row order, stopping
// at the first error. An error from fn is returned unchanged; an error from scan, or from rs
// once the rows run out, is returned through mapErr (the store's error mapping).
func Each[T any](rs Rows, scan func(Scanner) (T, error), mapErr func(error) error, fn func(T) error) error {
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			return mapErr(err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := rs.Err(); err != nil {
		return mapErr(err)
	}
	return nil
}

// Collect returns the values scan reads from every row of rs, in row order: nil for no rows.
// It stops at the first error, from scan or from rs, and returns it as it is, with no
// values.
func Collect[T any](rs Rows, scan func(Scanner) (T, error)) ([]T, error) {
	var out []T
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditRecord scans an audit_log row in the column layout both stores select (idx, data,
// hash) into the audit record it holds.
func AuditRecord(s Scanner) (vitalgate.AuditRecord, error) {
	var (
		idx int64
		rec vitalgate.AuditRecord
	)
	err := s.Scan(&idx, &rec.Data, &rec.Hash)
	rec.Index = uint64(idx) // #nosec G115 -- idx is non-negative by the audit_log column's CHECK (idx >= 0)
	return rec, err
}

// EachPair is Each for a result set of two columns, scanned into an A and a B and handed to
// fn as they are.
func EachPair[A, B any](rs Rows, mapErr func(error) error, fn func(A, B) error) error {
	type pair struct {
		a A
		b B
	}
	scan := func(s Scanner) (pair, error) {
		var p pair
		err := s.Scan(&p.a, &p.b)
		return p, err
	}
	return Each(rs, scan, mapErr, func(p pair) error { return fn(p.a, p.b) })
}
