package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	insertExportSQL = `INSERT INTO export_jobs (id, client_id, site, request, group_id, types_json, since, filters_json,
		status, wrapped_key, created_at, updated_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	exportColumns = `SELECT id, client_id, site, request, group_id, types_json, since, filters_json, status, owner,
		lease_until, progress, error, wrapped_key, files_json, created_at, updated_at, done_at, expires_at FROM export_jobs`
	selectExportSQL = exportColumns + ` WHERE id = $1`
	// The candidates a claim tries, oldest first; the claim itself is the conditional update.
	claimableExportsSQL = `SELECT id FROM export_jobs WHERE status = $1 OR (status = $2 AND lease_until < $3)
		ORDER BY created_at, id LIMIT 8`
	claimExportSQL = `UPDATE export_jobs SET status = $1, owner = $2, lease_until = $3, progress = '', updated_at = $4
		WHERE id = $5 AND (status = $6 OR (status = $1 AND lease_until < $4))`
	renewExportSQL = `UPDATE export_jobs SET lease_until = $1, progress = $2, updated_at = $3
		WHERE id = $4 AND owner = $5 AND status = $6`
	ownsExportSQL     = `SELECT EXISTS (SELECT 1 FROM export_jobs WHERE id = $1 AND owner = $2 AND status = $3)`
	insertExportChunk = `INSERT INTO export_chunks (job_id, owner, file_seq, seq, sealed) VALUES ($1, $2, $3, $4, $5)`
	finishExportSQL   = `UPDATE export_jobs SET status = $1, error = $2, files_json = $3, progress = '', done_at = $4,
		expires_at = $5, lease_until = NULL, updated_at = $4 WHERE id = $6 AND owner = $7 AND status = $8`
	otherRunChunksSQL = `DELETE FROM export_chunks WHERE job_id = $1 AND owner <> $2`
	cancelExportSQL   = `UPDATE export_jobs SET status = $1, lease_until = NULL, updated_at = $2 WHERE id = $3 AND status <> $1`
	exportExistsSQL   = `SELECT EXISTS (SELECT 1 FROM export_jobs WHERE id = $1)`
	deleteChunksSQL   = `DELETE FROM export_chunks WHERE job_id = $1`
	selectChunksSQL   = `SELECT c.seq, c.sealed FROM export_chunks c JOIN export_jobs j ON j.id = c.job_id AND j.owner = c.owner
		WHERE c.job_id = $1 AND c.file_seq = $2 AND j.status = $3 ORDER BY c.seq`
	expiredExportsSQL = `SELECT id FROM export_jobs WHERE expires_at < $1 ORDER BY id`
	deleteExportSQL   = `DELETE FROM export_jobs WHERE id = $1`
)

// CreateExportJob stores a new queued job and appends the audit entries, in one
// transaction. ECONFLICT if its id exists.
func (s Shared) CreateExportJob(ctx context.Context, j vitalgate.ExportJob, audit ...[]byte) error {
	if err := vitalgate.CheckExportJob(j); err != nil {
		return err
	}
	types, err := json.Marshal(j.Types)
	if err != nil {
		return vitalgate.Internal(err, "export types")
	}
	filters, err := json.Marshal(j.Filters)
	if err != nil {
		return vitalgate.Internal(err, "export filters")
	}
	t := s.b.Time
	created := s.orNow(j.CreatedAt)
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		_, err := tx.Exec(ctx, insertExportSQL, j.ID, j.Client, j.Site, j.Request, j.Group, string(types), t(j.Since),
			string(filters), string(vitalgate.ExportQueued), j.WrappedKey, t(created), t(created), t(j.ExpiresAt))
		return s.b.MapError(err, "export job")
	})
}

func scanExport(r rowiter.Scanner) (vitalgate.ExportJob, error) {
	var (
		j                              vitalgate.ExportJob
		types, filters, status, files  string
		since, lease, created, updated Time
		done, expires                  Time
	)
	if err := r.Scan(&j.ID, &j.Client, &j.Site, &j.Request, &j.Group, &types, &since, &filters, &status, &j.Owner,
		&lease, &j.Progress, &j.Error, &j.WrappedKey, &files, &created, &updated, &done, &expires); err != nil {
		return j, err
	}
	j.Status, j.Since, j.LeaseUntil = vitalgate.ExportStatus(status), since.T, lease.T
	j.CreatedAt, j.UpdatedAt, j.DoneAt, j.ExpiresAt = created.T, updated.T, done.T, expires.T
	for _, c := range []struct {
		col string
		v   any
	}{{types, &j.Types}, {filters, &j.Filters}, {files, &j.Files}} {
		if err := json.Unmarshal([]byte(c.col), c.v); err != nil {
			return j, vitalgate.Internal(err, "export job")
		}
	}
	return j, nil
}

// ExportJob returns a job. ENOTFOUND.
func (s Shared) ExportJob(ctx context.Context, id string) (vitalgate.ExportJob, error) {
	return get(ctx, s, "export job", scanExport, selectExportSQL, id)
}

// ClaimExportJob gives owner the oldest job that is queued, or running with a lease that ran
// out before now, with a lease until leaseUntil. The claim is a conditional update of one
// job: of runs claiming at once, one changes the row and the others try the next candidate.
// The chunks an earlier run wrote are deleted when the job is finished. ENOTFOUND when there
// is none.
func (s Shared) ClaimExportJob(ctx context.Context, owner string, now, leaseUntil time.Time) (vitalgate.ExportJob, error) {
	ids, err := collect(ctx, s, "export jobs", scanString, claimableExportsSQL,
		string(vitalgate.ExportQueued), string(vitalgate.ExportRunning), s.b.Time(now))
	if err != nil {
		return vitalgate.ExportJob{}, err
	}
	for _, id := range ids {
		n, err := s.b.Writer().Exec(ctx, claimExportSQL, string(vitalgate.ExportRunning), owner, s.b.Time(leaseUntil),
			s.b.Time(now), id, string(vitalgate.ExportQueued))
		if err != nil {
			return vitalgate.ExportJob{}, s.b.MapError(err, "export job")
		}
		if n == 1 {
			return s.ExportJob(ctx, id)
		}
	}
	return vitalgate.ExportJob{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "no export job is waiting")
}

// RenewExportLease extends owner's lease of a running job and records its progress.
// ECONFLICT when owner holds it no longer.
func (s Shared) RenewExportLease(ctx context.Context, id, owner string, leaseUntil time.Time, progress string) error {
	n, err := s.b.Writer().Exec(ctx, renewExportSQL, s.b.Time(leaseUntil), progress, s.b.Time(s.b.Now()), id, owner,
		string(vitalgate.ExportRunning))
	if err != nil {
		return s.b.MapError(err, "export job")
	}
	if n == 0 {
		return errLostExport
	}
	return nil
}

// errLostExport tells a run that the job is no longer its own.
var errLostExport = vitalgate.Errorf(vitalgate.ECONFLICT, "the export job is no longer held by this run (taken over or cancelled)")

// PutExportChunk stores chunk seq of file file, written by owner. ECONFLICT when owner holds
// the job no longer.
func (s Shared) PutExportChunk(ctx context.Context, id, owner string, file, seq int, sealed []byte) error {
	return s.b.InTx(ctx, nil, func(tx Conn) error {
		var owns bool
		if err := tx.QueryRow(ctx, ownsExportSQL, id, owner, string(vitalgate.ExportRunning)).Scan(&owns); err != nil {
			return s.b.MapError(err, "export job")
		}
		if !owns {
			return errLostExport
		}
		_, err := tx.Exec(ctx, insertExportChunk, id, owner, file, seq, sealed)
		return s.b.MapError(err, "export chunk")
	})
}

// FinishExportJob ends the running job j.ID that j.Owner holds, done or failed, and deletes
// the chunks of other runs; with the audit entries, in one transaction. ECONFLICT when
// j.Owner holds it no longer.
func (s Shared) FinishExportJob(ctx context.Context, j vitalgate.ExportJob, audit ...[]byte) error {
	if j.Status != vitalgate.ExportDone && j.Status != vitalgate.ExportFailed {
		return vitalgate.Errorf(vitalgate.EINVALID, "an export job finishes done or failed, not %s", j.Status)
	}
	files, err := json.Marshal(j.Files)
	if err != nil {
		return vitalgate.Internal(err, "export files")
	}
	if j.Files == nil {
		files = []byte("[]")
	}
	t := s.b.Time
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		n, err := tx.Exec(ctx, finishExportSQL, string(j.Status), j.Error, string(files), t(s.orNow(j.DoneAt)), t(j.ExpiresAt),
			j.ID, j.Owner, string(vitalgate.ExportRunning))
		if err != nil {
			return s.b.MapError(err, "export job")
		}
		if n == 0 {
			return errLostExport
		}
		_, err = tx.Exec(ctx, otherRunChunksSQL, j.ID, j.Owner)
		return s.b.MapError(err, "export chunks")
	})
}

// CancelExportJob marks a job cancelled and deletes its chunks, with the audit entries, in
// one transaction. ENOTFOUND; ECONFLICT when it was cancelled already.
func (s Shared) CancelExportJob(ctx context.Context, id string, at time.Time, audit ...[]byte) error {
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		if err := s.conditional(ctx, tx, "export job", exportExistsSQL, id, func() (int64, error) {
			return tx.Exec(ctx, cancelExportSQL, string(vitalgate.ExportCancelled), s.b.Time(s.orNow(at)), id)
		}); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, deleteChunksSQL, id)
		return s.b.MapError(err, "export chunks")
	})
}

// ExportChunks calls fn with the sealed chunks of file of a done job, in order, as the run
// that finished it wrote them.
func (s Shared) ExportChunks(ctx context.Context, id string, file int, fn func(seq int, sealed []byte) error) error {
	rows, err := s.b.Reader().Query(ctx, selectChunksSQL, id, file, string(vitalgate.ExportDone))
	if err != nil {
		return s.b.MapError(err, "export chunks")
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq    int
			sealed []byte
		)
		if err := rows.Scan(&seq, &sealed); err != nil {
			return s.b.MapError(err, "export chunks")
		}
		if err := fn(seq, sealed); err != nil {
			return err
		}
	}
	return s.b.MapError(rows.Err(), "export chunks")
}

// DeleteExpiredExports deletes the jobs (and chunks) that expired before now and returns
// their ids.
func (s Shared) DeleteExpiredExports(ctx context.Context, now time.Time) ([]string, error) {
	ids, err := collect(ctx, s, "export jobs", scanString, expiredExportsSQL, s.b.Time(now))
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := s.b.InTx(ctx, nil, func(tx Conn) error {
			if _, err := tx.Exec(ctx, deleteChunksSQL, id); err != nil {
				return s.b.MapError(err, "export chunks")
			}
			_, err := tx.Exec(ctx, deleteExportSQL, id)
			return s.b.MapError(err, "export job")
		}); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

var _ vitalgate.ExportStore = Shared{}

// scanString scans a row of one text column.
func scanString(r rowiter.Scanner) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}
