package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"math"
	"strings"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/groupcommit"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	insertResourceSQL = `INSERT INTO resources (type, id, version, patient_index, effective, last_updated, body, site)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	// deletePriorVersionSQL removes the version a new version replaces (its code and
	// identifier index rows go with it, ON DELETE CASCADE): the insert that follows then
	// stores the new version, and fails on the primary key if another version is stored.
	deletePriorVersionSQL = `DELETE FROM resources WHERE type = ? AND id = ? AND version = ?`
	insertCodeSQL         = `INSERT OR IGNORE INTO resource_codes (type, id, code_index) VALUES (?, ?, ?)`
	// insertIdentifierSQL stores an identifier index once per resource; a Patient identifier
	// that another Patient has fails the unique index resource_identifiers_patient_unique.
	insertIdentifierSQL = `INSERT INTO resource_identifiers (type, id, patient_index, identifier_index, site)
	VALUES (?, ?, ?, ?, ?) ON CONFLICT (type, id, identifier_index) DO NOTHING`

	// resourceColumns selects a resource and, as comma-separated hex, its code indexes and
	// its identifier indexes.
	resourceColumns = `SELECT r.type, r.id, r.version, r.patient_index, r.effective, r.last_updated, r.body, r.site,
	(SELECT group_concat(hex(x.code_index), ',') FROM resource_codes x WHERE x.type = r.type AND x.id = r.id),
	(SELECT group_concat(hex(x.identifier_index), ',') FROM resource_identifiers x WHERE x.type = r.type AND x.id = r.id)`

	selectResourceSQL = resourceColumns + ` FROM resources r WHERE r.type = ? AND r.id = ?`

	// The Resources queries all take the same numbered parameters:
	//	?1 type ('' for any)  ?2 patient index (NULL for any)  ?3 code index (NULL for any)
	//	?4 since (NULL for any)  ?5 after ('' from the start)  ?6 limit (-1 for none)
	//	?10 site ('' for any)
	// They differ in which filter leads, so that SQLite can use an index for it.

	// resourcesByPatientSQL walks the (patient_index, id) index.
	resourcesByPatientSQL = resourceColumns + ` FROM resources r
	WHERE r.patient_index = ?2 AND r.id > ?5
	AND (?1 = '' OR r.type = ?1)
	AND (?3 IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = ?3))
	AND (?4 IS NULL OR r.last_updated >= ?4) AND (?10 = '' OR r.site = ?10)
	ORDER BY r.id, r.type LIMIT ?6`

	// resourcesByIdentifierSQL seeks a patient's resources of one type with identifier ?7 on
	// the (type, patient_index, identifier_index, id) index: its cost does not depend on how
	// many resources the patient has. The type is compared as +?1: a bare ?1 would be
	// matched against the WHERE of the partial index resource_identifiers_patient_unique,
	// which makes SQLite prepare the statement again whenever ?1 is bound anew, that is on
	// every resend check (half of the parsing CPU of an HL7 ingest, by profile).
	resourcesByIdentifierSQL = resourceColumns + ` FROM resource_identifiers i JOIN resources r ON r.type = i.type AND r.id = i.id
	WHERE i.type = +?1 AND i.patient_index = ?2 AND i.identifier_index = ?7 AND i.id > ?5
	AND (?3 IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = ?3))
	AND (?4 IS NULL OR r.last_updated >= ?4) AND (?10 = '' OR r.site = ?10)
	ORDER BY i.id LIMIT ?6`

	// patientsByIdentifierSQL seeks the Patient of site ?10 with identifier ?7 on the unique
	// partial index resource_identifiers_patient_unique (site, identifier_index), whose WHERE
	// the literal type matches.
	patientsByIdentifierSQL = resourceColumns + ` FROM resource_identifiers i JOIN resources r ON r.type = i.type AND r.id = i.id
	WHERE i.type = 'Patient' AND i.site = ?10 AND i.identifier_index = ?7 AND i.id > ?5
	AND (?2 IS NULL OR i.patient_index = ?2)
	AND (?3 IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = ?3))
	AND (?4 IS NULL OR r.last_updated >= ?4) AND (?10 = '' OR r.site = ?10)
	ORDER BY i.id LIMIT ?6`

	// resourcesByCodeSQL walks the (code_index, id) index of resource_codes.
	resourcesByCodeSQL = resourceColumns + ` FROM resource_codes c JOIN resources r ON r.type = c.type AND r.id = c.id
	WHERE c.code_index = ?3 AND c.id > ?5
	AND (?1 = '' OR c.type = ?1)
	AND (?2 IS NULL OR r.patient_index = ?2)
	AND (?4 IS NULL OR r.last_updated >= ?4) AND (?10 = '' OR r.site = ?10)
	ORDER BY c.id, c.type LIMIT ?6`

	// resourcesByEffectiveAscSQL and resourcesByEffectiveDescSQL walk a patient's resources
	// of one type in (effective, id) order on the (patient_index, type, effective, id) index;
	// ?7/?8 bound effective to [from, to), and ?9/?5 resume after a (effective, id) cursor.
	resourcesByEffectiveAscSQL = resourceColumns + ` FROM resources r
	WHERE r.patient_index = ?2 AND r.type = ?1
	AND (?3 IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = ?3))
	AND (?4 IS NULL OR r.last_updated >= ?4) AND (?10 = '' OR r.site = ?10)
	AND (?7 IS NULL OR r.effective >= ?7) AND (?8 IS NULL OR r.effective < ?8)
	AND (?9 IS NULL OR r.effective > ?9 OR (r.effective = ?9 AND r.id > ?5))
	ORDER BY r.effective, r.id LIMIT ?6`

	resourcesByEffectiveDescSQL = resourceColumns + ` FROM resources r
	WHERE r.patient_index = ?2 AND r.type = ?1
	AND (?3 IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = ?3))
	AND (?4 IS NULL OR r.last_updated >= ?4) AND (?10 = '' OR r.site = ?10)
	AND (?7 IS NULL OR r.effective >= ?7) AND (?8 IS NULL OR r.effective < ?8)
	AND (?9 IS NULL OR r.effective < ?9 OR (r.effective = ?9 AND r.id < ?5))
	ORDER BY r.effective DESC, r.id DESC LIMIT ?6`

	// resourcesByEffectiveAscBoundedSQL and resourcesByEffectiveDescBoundedSQL are the same
	// walks when a date bound is given: ?7/?8 bound effective to [from, to) as a range of
	// the index (Resources passes the widest values for a bound not given), so that the walk
	// starts at the first row in range and ends at the last one, whatever the patient's
	// history outside it. Without a bound the walk needs none (and must keep the rows without
	// an effective time).
	resourcesByEffectiveAscBoundedSQL = resourceColumns + ` FROM resources r
	WHERE r.patient_index = ?2 AND r.type = ?1 AND r.effective >= ?7 AND r.effective < ?8
	AND (?3 IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = ?3))
	AND (?4 IS NULL OR r.last_updated >= ?4) AND (?10 = '' OR r.site = ?10)
	AND (?9 IS NULL OR r.effective > ?9 OR (r.effective = ?9 AND r.id > ?5))
	ORDER BY r.effective, r.id LIMIT ?6`

	resourcesByEffectiveDescBoundedSQL = resourceColumns + ` FROM resources r
	WHERE r.patient_index = ?2 AND r.type = ?1 AND r.effective >= ?7 AND r.effective < ?8
	AND (?3 IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = ?3))
	AND (?4 IS NULL OR r.last_updated >= ?4) AND (?10 = '' OR r.site = ?10)
	AND (?9 IS NULL OR r.effective < ?9 OR (r.effective = ?9 AND r.id < ?5))
	ORDER BY r.effective DESC, r.id DESC LIMIT ?6`

	// resourcesByTypeSQL walks the primary key.
	resourcesByTypeSQL = resourceColumns + ` FROM resources r
	WHERE r.type = ?1 AND r.id > ?5
	AND (?2 IS NULL OR r.patient_index = ?2)
	AND (?3 IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = ?3))
	AND (?4 IS NULL OR r.last_updated >= ?4) AND (?10 = '' OR r.site = ?10)
	ORDER BY r.id LIMIT ?6`

	// resourcesAllSQL scans every resource (export): SQLite sorts by id.
	resourcesAllSQL = resourceColumns + ` FROM resources r
	WHERE r.id > ?5
	AND (?1 = '' OR r.type = ?1)
	AND (?2 IS NULL OR r.patient_index = ?2)
	AND (?3 IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = ?3))
	AND (?4 IS NULL OR r.last_updated >= ?4) AND (?10 = '' OR r.site = ?10)
	ORDER BY r.id, r.type LIMIT ?6`

	selectDataKeySQL = `SELECT patient_index, wrapped, created_at, site FROM data_keys WHERE patient_index = ?`
	insertDataKeySQL = `INSERT INTO data_keys (patient_index, wrapped, created_at, site) VALUES (?, ?, ?, ?)
	ON CONFLICT (patient_index) DO NOTHING`
	pageDataKeysSQL = `SELECT patient_index, wrapped, created_at, site FROM data_keys
	WHERE ?1 IS NULL OR patient_index > ?1 ORDER BY patient_index LIMIT ?2`
	updateDataKeySQL = `UPDATE data_keys SET wrapped = ? WHERE patient_index = ?`
)

// resourceQueries is the Resources query of each lead, indexed by vitalgate.ResourceLead
// (in the order of its constants).
var resourceQueries = [...]string{resourcesAllSQL, resourcesByTypeSQL, resourcesByCodeSQL, resourcesByPatientSQL,
	resourcesByEffectiveAscSQL, resourcesByEffectiveDescSQL, resourcesByIdentifierSQL, patientsByIdentifierSQL}

// boundedEffectiveQueries are the LeadEffectiveAsc and LeadEffectiveDesc queries with a date
// bound.
var boundedEffectiveQueries = [...]string{resourcesByEffectiveAscBoundedSQL, resourcesByEffectiveDescBoundedSQL}

// rewrapPage is how many data keys RewrapDataKeys holds in memory at a time.
const rewrapPage = 256

// batch is one CreateResources or AppendAudit call's work for the group commit.
type batch struct {
	rs    []vitalgate.SealedResource
	audit [][]byte // appended after rs, inside the same savepoint
}

// batchSize is how much of a group commit's MaxBatch a call takes.
func batchSize(b batch) int { return len(b.rs) + len(b.audit) }

// CreateResources durably stores rs in one transaction: all or none, and appends the audit
// entries in the same transaction. Concurrent callers (and AppendAudit callers) share one
// commit (group commit), each under its own savepoint, so one caller's failure leaves none of
// its resources and none of its audit entries, and does not affect another caller. A zero
// LastUpdated is set to the current time.
//
// If ctx is done before the writer takes the batch, CreateResources returns ctx.Err() and
// nothing is written. Once the batch is taken, CreateResources waits for the commit (at most
// one transaction), so that a nil error always means "durable" and an error means "not
// written". Returns ECONFLICT if an id exists or repeats in rs, EINVALID for a resource
// without type, id or body or an empty audit entry, EUNAVAILABLE when the database is busy,
// full or closed. With no resources it writes nothing, audit entries included.
func (db *DB) CreateResources(ctx context.Context, rs []vitalgate.SealedResource, audit ...[]byte) error {
	if len(rs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := vitalgate.CheckWrite(rs, audit); err != nil {
		return err
	}
	stamped := make([]vitalgate.SealedResource, len(rs))
	for i, r := range rs {
		r.LastUpdated = db.orNow(r.LastUpdated)
		stamped[i] = r
	}
	_, err := db.submit(ctx, stamped, audit)
	return err
}

// submit hands resources and audit entries to the group commit and waits for the commit. It
// returns the index of the first audit entry.
func (db *DB) submit(ctx context.Context, rs []vitalgate.SealedResource, audit [][]byte) (uint64, error) {
	return db.queue.Submit(ctx, batch{rs: rs, audit: audit})
}

// commitGroup is the flush function of the group commit: it writes the calls of a group in
// one transaction, each under a savepoint that covers its resources and its audit entries,
// commits once, and sets every call's result. Audit indexes are assigned by the inserts
// themselves (max(idx) + 1), so a savepoint rolled back or a commit that fails leaves no gap
// and nothing to resynchronise.
func (db *DB) commitGroup(group []*groupcommit.Call[batch]) {
	fail := func(err error) {
		for _, c := range group {
			if c.Err == nil {
				c.First, c.Err = 0, err
			}
		}
	}
	// The transaction is shared, so it does not follow any one caller's context.
	ctx := context.Background()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		fail(mapError(err, "begin"))
		return
	}
	insRes := tx.StmtContext(ctx, db.insertResource)
	delPrior := tx.StmtContext(ctx, db.deletePrior)
	insCode := tx.StmtContext(ctx, db.insertCode)
	insIdent := tx.StmtContext(ctx, db.insertIdentifier)
	insAudit := tx.StmtContext(ctx, db.insertAudit)
	for _, c := range group {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT batch"); err != nil {
			_ = tx.Rollback()
			fail(mapError(err, "savepoint"))
			return
		}
		err := insertBatch(ctx, delPrior, insRes, insCode, insIdent, c.Work.rs)
		if err == nil {
			c.First, err = appendAudit(ctx, insAudit, c.Work.audit)
		}
		if err == nil {
			if _, err := tx.ExecContext(ctx, "RELEASE batch"); err != nil {
				_ = tx.Rollback()
				fail(mapError(err, "savepoint"))
				return
			}
			continue
		}
		c.First, c.Err = 0, err
		// Undo this caller's rows and audit entries only. If SQLite rolled back the whole
		// transaction itself (it may on SQLITE_FULL or an I/O error), the savepoint is gone:
		// fail the group.
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO batch"); rerr != nil {
			_ = tx.Rollback()
			fail(err)
			return
		}
		if _, rerr := tx.ExecContext(ctx, "RELEASE batch"); rerr != nil {
			_ = tx.Rollback()
			fail(err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(mapError(err, "commit"))
	}
}

// insertBatch inserts one caller's resources with the transaction's prepared statements; a
// resource of a version above 1 first removes the version it replaces
// (vitalgate.ResourceStore.CreateResources).
func insertBatch(ctx context.Context, delPrior, insRes, insCode, insIdent *sql.Stmt, rs []vitalgate.SealedResource) error {
	for _, r := range rs {
		if r.Version > 1 {
			if _, err := delPrior.ExecContext(ctx, r.Type, r.ID, r.Version-1); err != nil {
				return mapError(err, "resource "+r.Type+"/"+r.ID)
			}
		}
		if _, err := insRes.ExecContext(ctx, r.Type, r.ID, r.Version, dbBlob(r.PatientIndex),
			dbTime(r.Effective), dbTime(r.LastUpdated), r.Body, vitalgate.StoredSite(r.Site)); err != nil {
			return mapError(err, "resource "+r.Type+"/"+r.ID)
		}
		for _, c := range r.CodeIndexes {
			if len(c) == 0 {
				continue
			}
			if _, err := insCode.ExecContext(ctx, r.Type, r.ID, c); err != nil {
				return mapError(err, "code index")
			}
		}
		for _, x := range r.IdentifierIndexes {
			if len(x) == 0 {
				continue
			}
			if _, err := insIdent.ExecContext(ctx, r.Type, r.ID, dbBlob(r.PatientIndex), x, vitalgate.StoredSite(r.Site)); err != nil {
				return mapError(err, r.Type+" identifier")
			}
		}
	}
	return nil
}

// hexList decodes a comma-separated list of hex values (group_concat of hex()).
func hexList(s sql.NullString) ([][]byte, error) {
	if !s.Valid || s.String == "" {
		return nil, nil
	}
	var out [][]byte
	for _, h := range strings.Split(s.String, ",") {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func scanResource(s rowiter.Scanner) (vitalgate.SealedResource, error) {
	var (
		r                  vitalgate.SealedResource
		effective, updated sql.NullInt64
		codes, idents      sql.NullString
		err                error
	)
	if err := s.Scan(&r.Type, &r.ID, &r.Version, &r.PatientIndex, &effective, &updated, &r.Body, &r.Site, &codes, &idents); err != nil {
		return r, err
	}
	r.Effective, r.LastUpdated = goTime(effective), goTime(updated)
	if r.CodeIndexes, err = hexList(codes); err != nil {
		return r, err
	}
	r.IdentifierIndexes, err = hexList(idents)
	return r, err
}

// Resource returns one resource. Returns ENOTFOUND.
func (db *DB) Resource(ctx context.Context, typ, id string) (vitalgate.SealedResource, error) {
	r, err := scanResource(db.queryRow(ctx, selectResourceSQL, typ, id))
	if err != nil {
		return vitalgate.SealedResource{}, mapError(err, "resource")
	}
	return r, nil
}

// Resources calls fn for every resource matching f, in ascending id order (ties between
// types broken by type), stopping at the first error fn returns and returning it unchanged.
// Rows are streamed from one read snapshot; fn must not write to the store. A Limit of zero
// or less means no limit.
func (db *DB) Resources(ctx context.Context, f vitalgate.ResourceFilter, fn func(vitalgate.SealedResource) error) error {
	limit := int64(f.Limit)
	if limit <= 0 {
		limit = -1
	}
	var since any
	if !f.Since.IsZero() {
		since = f.Since.UnixMicro()
	}
	var from, to, afterEff any
	if !f.EffectiveFrom.IsZero() {
		from = f.EffectiveFrom.UnixMicro()
	}
	if !f.EffectiveTo.IsZero() {
		to = f.EffectiveTo.UnixMicro()
	}
	if !f.AfterEffective.IsZero() {
		afterEff = f.AfterEffective.UnixMicro()
	}
	if err := f.Validate(); err != nil {
		return err
	}
	args := []any{f.Type, dbBlob(f.PatientIndex), dbBlob(f.CodeIndex), since, f.After, limit, nil, nil, nil}
	lead := f.Lead()
	query := resourceQueries[lead]
	switch lead {
	case vitalgate.LeadEffectiveAsc, vitalgate.LeadEffectiveDesc:
		if from != nil || to != nil {
			// A date bound is an index range: the widest values for the one not given.
			if from == nil {
				from = int64(math.MinInt64)
			}
			if to == nil {
				to = int64(math.MaxInt64)
			}
			query = boundedEffectiveQueries[lead-vitalgate.LeadEffectiveAsc]
		}
		args[6], args[7], args[8] = from, to, afterEff
	case vitalgate.LeadPatientIdentifier, vitalgate.LeadPatientsByIdentifier:
		args[6] = f.IdentifierIndex
	}
	site := f.Site
	if lead == vitalgate.LeadPatientsByIdentifier {
		site = vitalgate.StoredSite(site) // a Patient identifier is unique within one site
	}
	args = append(args, site)
	// assurance:sql-ok query is one of this package's SQL constants (resourceQueries, boundedEffectiveQueries)
	rows, err := db.query(ctx, query, args...)
	if err != nil {
		return mapError(err, "resources")
	}
	defer rows.Close()
	return rowiter.Each(rows, scanResource, mapping("resources"), fn)
}

// DataKey returns the wrapped data key for a patient. Returns ENOTFOUND.
func (db *DB) DataKey(ctx context.Context, patientIndex []byte) (vitalgate.DataKey, error) {
	k, err := scanDataKey(db.queryRow(ctx, selectDataKeySQL, dbBlob(patientIndex)))
	if err != nil {
		return vitalgate.DataKey{}, mapError(err, "data key")
	}
	return k, nil
}

func scanDataKey(s rowiter.Scanner) (vitalgate.DataKey, error) {
	var (
		k       vitalgate.DataKey
		created sql.NullInt64
	)
	err := s.Scan(&k.PatientIndex, &k.Wrapped, &created, &k.Site)
	k.CreatedAt = goTime(created)
	return k, err
}

// PutDataKey stores a patient's wrapped data key if none exists yet and returns the one that
// is stored afterwards: the caller's, or the one stored first. A zero CreatedAt is set to the
// current time.
func (db *DB) PutDataKey(ctx context.Context, k vitalgate.DataKey) (vitalgate.DataKey, error) {
	if err := vitalgate.CheckDataKey(k); err != nil {
		return vitalgate.DataKey{}, err
	}
	var stored vitalgate.DataKey
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, insertDataKeySQL, k.PatientIndex, k.Wrapped,
			dbTime(db.orNow(k.CreatedAt)), vitalgate.StoredSite(k.Site)); err != nil {
			return mapError(err, "data key")
		}
		var err error
		stored, err = scanDataKey(tx.QueryRowContext(ctx, selectDataKeySQL, k.PatientIndex))
		return mapError(err, "data key")
	})
	if err != nil {
		return vitalgate.DataKey{}, err
	}
	return stored, nil
}

// RewrapDataKeys replaces every wrapped data key with rewrap's result, in one transaction,
// and returns how many changed. An error from rewrap aborts the transaction (nothing changes)
// and is returned unchanged. rewrap runs while the write transaction is open: it must not
// call the store.
func (db *DB) RewrapDataKeys(ctx context.Context, rewrap func(vitalgate.DataKey) ([]byte, bool, error)) (int, error) {
	changed := 0
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var after []byte // nil: from the start
		for {
			keys, err := dataKeyPage(ctx, tx, after)
			if err != nil {
				return err
			}
			for _, k := range keys {
				wrapped, ok, err := rewrap(k)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				if len(wrapped) == 0 {
					return vitalgate.Errorf(vitalgate.EINVALID, "rewrapped data key is empty")
				}
				if _, err := tx.ExecContext(ctx, updateDataKeySQL, wrapped, k.PatientIndex); err != nil {
					return mapError(err, "data key")
				}
				changed++
			}
			if len(keys) < rewrapPage {
				return nil
			}
			after = keys[len(keys)-1].PatientIndex
		}
	})
	if err != nil {
		return 0, err
	}
	return changed, nil
}

// dataKeyPage reads up to rewrapPage data keys after the given patient index.
func dataKeyPage(ctx context.Context, tx *sql.Tx, after []byte) ([]vitalgate.DataKey, error) {
	rows, err := tx.QueryContext(ctx, pageDataKeysSQL, dbBlob(after), rewrapPage)
	if err != nil {
		return nil, mapError(err, "data keys")
	}
	defer rows.Close()
	keys, err := rowiter.Collect(rows, scanDataKey)
	return keys, mapError(err, "data keys")
}

const selectConflictsSQL = `SELECT DISTINCT id, kept_id FROM patient_identifier_conflicts ORDER BY id, kept_id`

// PatientIdentifierConflicts lists the Patients whose identifier an older Patient kept when
// migration 0007 made Patient identifiers unique (see vitalgate.IdentifierConflict). It is
// empty for a database created since.
func (db *DB) PatientIdentifierConflicts(ctx context.Context) ([]vitalgate.IdentifierConflict, error) {
	rows, err := db.query(ctx, selectConflictsSQL)
	if err != nil {
		return nil, mapError(err, "identifier conflicts")
	}
	defer rows.Close()
	var out []vitalgate.IdentifierConflict
	for rows.Next() {
		var c vitalgate.IdentifierConflict
		if err := rows.Scan(&c.ID, &c.KeptID); err != nil {
			return nil, mapError(err, "identifier conflicts")
		}
		out = append(out, c)
	}
	return out, mapError(rows.Err(), "identifier conflicts")
}
