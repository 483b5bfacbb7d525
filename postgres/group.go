package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/groupcommit"
)

// Group commit: CreateResources and AppendAudit hand their work to the writer goroutines of
// the DB, each of which takes every request waiting (up to Options.MaxBatch rows and
// maxGroupCallers callers), writes them in one transaction and answers each caller. See the
// package documentation for why there are two writers.

// maxGroupCallers is the most callers one group commit takes. Each caller with resources gets
// its own savepoint, that is a subtransaction with its own transaction id, and PostgreSQL
// caches at most 64 of them per backend (PGPROC_MAX_CACHED_SUBXIDS): beyond that every other
// backend's snapshots are "suboverflowed" while the group's transaction runs and have to
// consult pg_subtrans, which would slow every reader for as long as groups run back to back.
const maxGroupCallers = 64

// groupWriters is the number of writer goroutines per DB. Two, so that one group's rows are
// inserted while the other group holds the audit_head lock across its commit; a third could
// only wait for the lock as well. (Measured: with one writer, large batches lost the
// parallelism that separate transactions had; with two they keep it, and small ones gain as
// much as with one.)
const groupWriters = 2

// Transaction control of a group commit. The savepoint name is reused: each caller's is
// released (or rolled back to and released) before the next caller's is set.
const (
	beginSQL      = `BEGIN`
	commitSQL     = `COMMIT`
	rollbackSQL   = `ROLLBACK`
	savepointSQL  = `SAVEPOINT vg_caller`
	releaseSQL    = `RELEASE SAVEPOINT vg_caller`
	rollbackToSQL = `ROLLBACK TO SAVEPOINT vg_caller`
)

// errStoreClosed is the cause of the EUNAVAILABLE error of a write after Close.
var errStoreClosed = errors.New("postgres: store closed")

// write is one CreateResources or AppendAudit call's work for the group commit.
type write struct {
	rs     *resourceRows // nil for AppendAudit
	audit  [][]byte      // the entries, appended after every caller's rows
	hashes [][]byte      // their leaf hashes
}

// writeSize is how much of a group's MaxBatch a call takes.
func writeSize(w write) int {
	n := len(w.audit)
	if w.rs != nil {
		n += len(w.rs.ids)
	}
	return n
}

// resourceRows is one CreateResources call's rows as the parallel arrays that
// insertResourcesSQL and insertCodesSQL take.
type resourceRows struct {
	types, ids, sites  []string
	versions           []int64
	patients, bodies   [][]byte
	effective, updated []pgtype.Timestamptz
	codeTypes, codeIDs []string
	codes              [][]byte
	identTypes         []string
	identIDs           []string
	identSites         []string
	identPatients      [][]byte
	idents             [][]byte
	// priorTypes, priorIDs and priorVersions name the versions that new versions (Version
	// above 1) replace.
	priorTypes, priorIDs []string
	priorVersions        []int64
}

// submit hands a call to the group commit and waits for its answer. If ctx is done before a
// writer takes the call, it returns ctx.Err() and nothing is written; once taken, the call is
// written (or fails) with its group, whatever happens to ctx.
func (db *DB) submit(ctx context.Context, rs *resourceRows, audit [][]byte) (uint64, error) {
	w := write{rs: rs, audit: audit}
	if len(audit) > 0 {
		_, w.hashes = auditArgs(audit)
	}
	return db.queue.Submit(ctx, w)
}

// Owners of the statements of a group's pipeline that belong to no one caller.
const (
	ownerGroup = -1 // transaction control: an error fails the group
	ownerAudit = -2 // the audit append, whose result is the first index
)

// commitGroup writes every live request of group in one transaction and answers every
// request. The transaction's statements go as one pipelined batch (one round trip): BEGIN;
// for each caller with resources SAVEPOINT, its rows, its code rows, RELEASE; then one audit
// append for the entries of every caller, which takes the audit_head lock; COMMIT. If a
// caller's statement fails (a duplicate id, say), the server skips the rest of the batch; the
// caller is answered with its error, its savepoint rolled back, and the callers after it are
// sent again with the audit append of the callers left, so that audit indexes are assigned to
// exactly the callers that are committed, densely and in order.
func (db *DB) commitGroup(group []*groupcommit.Call[write]) {
	live := make([]int, len(group)) // the group's calls still standing
	for i := range group {
		live[i] = i
	}
	// fail answers every call not answered yet with err.
	fail := func(err error) {
		for _, c := range group {
			if c.Err == nil {
				c.First, c.Err = 0, err
			}
		}
	}

	ctx, cancel := groupContext(group)
	defer cancel()
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		fail(mapError(err, "begin"))
		return
	}
	// A connection left inside a transaction (after a failure that also made the rollback
	// below fail) is closed by the pool rather than reused.
	defer conn.Release()
	rollback := func() {
		if !conn.Conn().IsClosed() {
			_, _ = conn.Exec(ctx, rollbackSQL)
		}
	}

	// With one caller there is nothing to protect from its failure: no savepoint.
	savepoints := len(live) > 1
	pending := live // callers whose rows are still to be sent
	begin, release := true, false
	for {
		var (
			b      = &pgx.Batch{}
			owners []int // the owner of each statement queued in b
		)
		if begin {
			b.Queue(beginSQL)
			owners = append(owners, ownerGroup)
		}
		if release {
			b.Queue(releaseSQL)
			owners = append(owners, ownerGroup)
		}
		for _, i := range pending {
			rs := group[i].Work.rs
			if rs == nil {
				continue
			}
			if savepoints {
				b.Queue(savepointSQL)
				owners = append(owners, ownerGroup)
			}
			if len(rs.priorIDs) > 0 {
				b.Queue(deletePriorVersionsSQL, rs.priorTypes, rs.priorIDs, rs.priorVersions)
				owners = append(owners, i)
			}
			b.Queue(insertResourcesSQL, rs.types, rs.ids, rs.versions, rs.patients, rs.effective, rs.updated, rs.bodies, rs.sites)
			owners = append(owners, i)
			if len(rs.codes) > 0 {
				b.Queue(insertCodesSQL, rs.codeTypes, rs.codeIDs, rs.codes)
				owners = append(owners, i)
			}
			if len(rs.idents) > 0 {
				b.Queue(insertIdentifiersSQL, rs.identTypes, rs.identIDs, rs.identPatients, rs.idents, rs.identSites)
				owners = append(owners, i)
			}
			if savepoints {
				b.Queue(releaseSQL)
				owners = append(owners, ownerGroup)
			}
		}
		// The audit entries of every caller still standing, in group order.
		var data, hashes [][]byte
		offset := make(map[int]int)
		for _, i := range live {
			if group[i].Err == nil && len(group[i].Work.audit) > 0 {
				offset[i] = len(data)
				data, hashes = append(data, group[i].Work.audit...), append(hashes, group[i].Work.hashes...)
			}
		}
		if len(data) > 0 {
			b.Queue(appendAuditSQL, data, hashes)
			owners = append(owners, ownerAudit)
		}
		b.Queue(commitSQL)
		owners = append(owners, ownerGroup)

		var (
			first  int64
			failed = -1 // index in owners of the statement that failed
		)
		br := conn.SendBatch(ctx, b)
		for k, owner := range owners {
			if owner == ownerAudit {
				err = br.QueryRow().Scan(&first)
			} else {
				_, err = br.Exec()
			}
			if err != nil {
				failed = k
				break
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			for i, off := range offset {
				group[i].First = uint64(first) + uint64(off) // #nosec G115 -- first is the old audit_head.size, non-negative by the column's CHECK (size >= 0)
			}
			return
		}

		owner := ownerGroup
		if failed >= 0 {
			owner = owners[failed]
		}
		var pe *pgconn.PgError
		if owner < 0 || !errors.As(err, &pe) {
			// Transaction control, the audit append or the connection failed: the group
			// fails as a whole.
			what := "resource"
			switch {
			case owner == ownerAudit:
				what = "audit entry"
			case failed == len(owners)-1:
				what = "commit"
			}
			fail(mapError(err, what))
			rollback()
			return
		}
		// One caller's rows were refused: that caller fails alone.
		group[owner].Err = mapError(err, "resource")
		if !savepoints {
			rollback()
			return
		}
		if _, err := conn.Exec(ctx, rollbackToSQL); err != nil {
			fail(mapError(err, "resource"))
			rollback()
			return
		}
		for k, i := range pending {
			if i == owner {
				pending = pending[k+1:]
				break
			}
		}
		begin, release = false, true
	}
}

// groupContext returns the context of a group's transaction. The transaction is shared, so it
// follows no one caller's cancellation; but it is bounded by the latest deadline among the
// callers, if each has one, so that a database that stops answering (or an audit_head lock
// held elsewhere) does not hold callers past every deadline they set.
func groupContext(group []*groupcommit.Call[write]) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, c := range group {
		d, ok := c.Ctx.Deadline()
		if !ok {
			return context.WithCancel(context.Background())
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}

// newResourceRows returns rs (checked by vitalgate.CheckWrite) as parameter arrays, with a
// zero LastUpdated set to the current time.
func (db *DB) newResourceRows(rs []vitalgate.SealedResource) *resourceRows {
	n := len(rs)
	a := &resourceRows{
		types: make([]string, n), ids: make([]string, n), sites: make([]string, n),
		versions: make([]int64, n),
		patients: make([][]byte, n), bodies: make([][]byte, n),
		effective: make([]pgtype.Timestamptz, n), updated: make([]pgtype.Timestamptz, n),
	}
	for i, r := range rs {
		a.types[i], a.ids[i], a.versions[i], a.bodies[i], a.sites[i] = r.Type, r.ID, int64(r.Version), r.Body, vitalgate.StoredSite(r.Site)
		if len(r.PatientIndex) > 0 {
			a.patients[i] = r.PatientIndex
		}
		a.effective[i] = pgTime(r.Effective)
		if r.Version > 1 {
			a.priorTypes, a.priorIDs = append(a.priorTypes, r.Type), append(a.priorIDs, r.ID)
			a.priorVersions = append(a.priorVersions, int64(r.Version-1))
		}
		a.updated[i] = pgTime(db.orNow(r.LastUpdated))
		for _, c := range r.CodeIndexes {
			if len(c) == 0 {
				continue
			}
			a.codeTypes, a.codeIDs, a.codes = append(a.codeTypes, r.Type), append(a.codeIDs, r.ID), append(a.codes, c)
		}
		for _, x := range r.IdentifierIndexes {
			if len(x) == 0 {
				continue
			}
			a.identTypes, a.identIDs, a.identSites = append(a.identTypes, r.Type), append(a.identIDs, r.ID), append(a.identSites, vitalgate.StoredSite(r.Site))
			a.identPatients, a.idents = append(a.identPatients, a.patients[i]), append(a.idents, x)
		}
	}
	return a
}
