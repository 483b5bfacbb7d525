package bench

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vitalgate/vitalgate/node"
)

// What the bench counts, it counts in the store after the run: a scenario that claims
// stored observations reads the number of Observation rows (and audit entries) before and
// after, with its own connection to the database, rather than trusting the answers it got.

// storeProbe reads counts and sizes of the database of a server under test.
type storeProbe struct {
	cfg    node.StoreConfig
	sqlite string // the SQLite database file
}

// probe returns the store probe of the server.
func (s *benchServer) probe() storeProbe {
	return storeProbe{cfg: s.store, sqlite: filepath.Join(s.dir, node.DBFile)}
}

// Counts are the rows a scenario is about, read from the store.
type Counts struct {
	Observations int64 // rows of resources with type Observation
	Audit        uint64
	Bytes        int64 // database size (SQLite: the files after a checkpoint; PostgreSQL: the schema's relations)
	// Run, set by loadCounted, is what the whole run added (warm-up and the calls that
	// ended after the measured window included).
	Run *Counts
}

// Sub returns c - o.
func (c Counts) Sub(o Counts) Counts {
	return Counts{Observations: c.Observations - o.Observations, Audit: c.Audit - o.Audit, Bytes: c.Bytes - o.Bytes}
}

const (
	// countObservationsSQL counts the Observations whose id is at least ?1 (the ids begin
	// with their creation time: ingest.NewID), a range of the primary key, so that counting
	// the rows of one run costs as much on a store holding a million as on an empty one.
	countObservationsSQL   = `SELECT count(*) FROM resources WHERE type = 'Observation' AND id >= ?`
	countObservationsPGSQL = `SELECT count(*) FROM resources WHERE type = 'Observation' AND id >= $1`
	checkpointSQL          = `PRAGMA wal_checkpoint(TRUNCATE)`
	schemaBytesSQL         = `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')`
	countAuditSQL = `SELECT coalesce(max(idx) + 1, 0) FROM audit_log`
)

// sinceID is the smallest resource id ingest.NewID makes at or after t.
func sinceID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16) // #nosec G115 -- a time after 1970
	return hex.EncodeToString(b[:6])
}

// counts reads the Observation rows created since (all of them for the zero time), the audit
// entries and, with size set, the database size (SQLite: after a checkpoint, so call it only
// when no load runs).
func (p storeProbe) counts(ctx context.Context, since time.Time, size bool) (Counts, error) {
	var c Counts
	from := ""
	if !since.IsZero() {
		from = sinceID(since)
	}
	if p.cfg.Driver == "postgres" {
		cfg, err := pgx.ParseConfig(p.cfg.DSN)
		if err != nil {
			return c, err
		}
		cfg.RuntimeParams["search_path"] = p.cfg.Schema
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return c, fmt.Errorf("bench: count rows: %w", err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, countObservationsPGSQL, from).Scan(&c.Observations); err != nil {
			return c, fmt.Errorf("bench: count rows: %w", err)
		}
		var audit int64
		if err := conn.QueryRow(ctx, countAuditSQL).Scan(&audit); err != nil {
			return c, fmt.Errorf("bench: count audit entries: %w", err)
		}
		c.Audit = uint64(audit) // #nosec G115 -- a count
		if !size {
			return c, nil
		}
		err = conn.QueryRow(ctx, schemaBytesSQL, p.cfg.Schema).Scan(&c.Bytes)
		return c, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(p.sqlite), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return c, err
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, countObservationsSQL, from).Scan(&c.Observations); err != nil {
		return c, fmt.Errorf("bench: count rows: %w", err)
	}
	var audit int64
	if err := db.QueryRowContext(ctx, countAuditSQL).Scan(&audit); err != nil {
		return c, fmt.Errorf("bench: count audit entries: %w", err)
	}
	c.Audit = uint64(audit) // #nosec G115 -- a count
	if !size {
		return c, nil
	}
	var busy, logPages, done int
	if err := db.QueryRowContext(ctx, checkpointSQL).Scan(&busy, &logPages, &done); err != nil {
		return c, fmt.Errorf("bench: checkpoint: %w", err)
	}
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(p.sqlite + suffix); err == nil {
			c.Bytes += fi.Size()
		}
	}
	return c, nil
}

// countNote says what a row counted in the store.
func countNote(d Counts) string {
	n := fmt.Sprintf("counted in the store over the measured window: %d Observation rows and %d audit entries added", d.Observations, d.Audit)
	if d.Run != nil {
		n += fmt.Sprintf(" (whole run with warm-up: %d rows, %d audit entries)", d.Run.Observations, d.Run.Audit)
	}
	return n
}
