package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vitalgate/vitalgate"
)

const (
	// insertResourcesSQL inserts a whole batch in one statement from parallel arrays.
	insertResourcesSQL = `INSERT INTO resources (type, id, version, patient_index, effective, last_updated, body, site)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::timestamptz[], $6::timestamptz[], $7::bytea[], $8::text[])`
	// deletePriorVersionsSQL removes the versions that the batch's new versions replace (their
	// code and identifier index rows go with them, ON DELETE CASCADE): insertResourcesSQL then
	// stores the new versions, and fails on the primary key if another version is stored.
	deletePriorVersionsSQL = `DELETE FROM resources r USING unnest($1::text[], $2::text[], $3::bigint[]) AS p (type, id, version)
	WHERE r.type = p.type AND r.id = p.id AND r.version = p.version`
	// insertCodesSQL inserts the batch's code index rows; a code repeated within a resource
	// is stored once.
	insertCodesSQL = `INSERT INTO resource_codes (type, id, code_index)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) ON CONFLICT DO NOTHING`
	// insertIdentifiersSQL inserts the batch's identifier index rows; an identifier repeated
	// within a resource is stored once, and a Patient identifier that another Patient has
	// fails the unique index resource_identifiers_patient_unique.
	insertIdentifiersSQL = `INSERT INTO resource_identifiers (type, id, patient_index, identifier_index, site)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[])
	ON CONFLICT (type, id, identifier_index) DO NOTHING`

	// resourceColumns selects a resource and the arrays of its code and identifier indexes.
	resourceColumns = `SELECT r.type, r.id, r.version, r.patient_index, r.effective, r.last_updated, r.body, r.site,
	(SELECT array_agg(x.code_index) FROM resource_codes x WHERE x.type = r.type AND x.id = r.id),
	(SELECT array_agg(x.identifier_index) FROM resource_identifiers x WHERE x.type = r.type AND x.id = r.id)`

	selectResourceSQL = resourceColumns + ` FROM resources r WHERE r.type = $1 AND r.id = $2`

	// The Resources queries all take the same numbered parameters:
	//	$1 type ('' for any)  $2 patient index (NULL for any)  $3 code index (NULL for any)
	//	$4 since (NULL for any)  $5 after ('' from the start)  $6 limit (NULL for none)
	//	$7 site ('' for any)
	// and the ByEffective ones also $8/$9 effective from/to (NULL for open), $10 the
	// effective time of the cursor (NULL for none). They differ in which filter leads, so
	// that the planner uses an index for it: a generic plan cannot see which optional
	// filters are set.

	// resourcesByPatientSQL walks the (patient_index, id, type) index.
	resourcesByPatientSQL = resourceColumns + ` FROM resources r
	WHERE r.patient_index = $2::bytea AND r.id > $5::text
	AND ($1::text = '' OR r.type = $1::text)
	AND ($3::bytea IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = $3::bytea OFFSET 0))
	AND ($4::timestamptz IS NULL OR r.last_updated >= $4::timestamptz)
	AND ($7::text = '' OR r.site = $7::text)
	ORDER BY r.id, r.type LIMIT $6::bigint`

	// resourcesByIdentifierSQL seeks a patient's resources of one type with identifier $8 on
	// the (type, patient_index, identifier_index, id) index: its cost does not depend on how
	// many resources the patient has.
	resourcesByIdentifierSQL = resourceColumns + ` FROM resource_identifiers i JOIN resources r ON r.type = i.type AND r.id = i.id
	WHERE i.type = $1::text AND i.patient_index = $2::bytea AND i.identifier_index = $8::bytea AND i.id > $5::text
	AND ($3::bytea IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = $3::bytea))
	AND ($4::timestamptz IS NULL OR r.last_updated >= $4::timestamptz)
	AND ($7::text = '' OR r.site = $7::text)
	ORDER BY i.id LIMIT $6::bigint`

	// patientsByIdentifierSQL seeks the Patient of site $7 with identifier $8 on the unique
	// partial index resource_identifiers_patient_unique (site, identifier_index) (whose WHERE the literal type matches, also
	// in a generic plan). $1 is unused: the caller sends only Patient searches here.
	patientsByIdentifierSQL = resourceColumns + ` FROM resource_identifiers i JOIN resources r ON r.type = i.type AND r.id = i.id
	WHERE i.type = 'Patient' AND i.site = $7::text AND i.identifier_index = $8::bytea AND i.id > $5::text
	AND ($1::text = 'Patient')
	AND ($2::bytea IS NULL OR i.patient_index = $2::bytea)
	AND ($3::bytea IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = $3::bytea))
	AND ($4::timestamptz IS NULL OR r.last_updated >= $4::timestamptz)
	AND ($7::text = '' OR r.site = $7::text)
	ORDER BY i.id LIMIT $6::bigint`

	// resourcesByCodeSQL walks the (code_index, id) index of resource_codes.
	resourcesByCodeSQL = resourceColumns + ` FROM resource_codes c JOIN resources r ON r.type = c.type AND r.id = c.id
	WHERE c.code_index = $3::bytea AND c.id > $5::text
	AND ($1::text = '' OR c.type = $1::text)
	AND ($2::bytea IS NULL OR r.patient_index = $2::bytea)
	AND ($4::timestamptz IS NULL OR r.last_updated >= $4::timestamptz)
	AND ($7::text = '' OR r.site = $7::text)
	ORDER BY c.id, c.type LIMIT $6::bigint`

	// A code filter on a walk of a patient's resources probes resource_codes row by row
	// (OFFSET 0 keeps the planner from hashing the EXISTS, which reads every row of the code
	// in the store, however few the walk needs: its cost would grow with history).

	// resourcesByEffectiveAscSQL and resourcesByEffectiveDescSQL walk a patient's resources
	// of one type in (effective, id) order on the (patient_index, type, effective NULLS FIRST,
	// id) index, forwards and backwards; $8/$9 bound effective to [from, to), and $10/$5 resume
	// after an (effective, id) cursor. An unset effective sorts first, as in SQLite.
	resourcesByEffectiveAscSQL = resourceColumns + ` FROM resources r
	WHERE r.patient_index = $2::bytea AND r.type = $1::text
	AND ($3::bytea IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = $3::bytea OFFSET 0))
	AND ($4::timestamptz IS NULL OR r.last_updated >= $4::timestamptz)
	AND ($7::text = '' OR r.site = $7::text)
	AND ($8::timestamptz IS NULL OR r.effective >= $8::timestamptz)
	AND ($9::timestamptz IS NULL OR r.effective < $9::timestamptz)
	AND ($10::timestamptz IS NULL OR r.effective > $10::timestamptz
		OR (r.effective = $10::timestamptz AND r.id > $5::text))
	ORDER BY r.effective ASC NULLS FIRST, r.id ASC LIMIT $6::bigint`

	resourcesByEffectiveDescSQL = resourceColumns + ` FROM resources r
	WHERE r.patient_index = $2::bytea AND r.type = $1::text
	AND ($3::bytea IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = $3::bytea OFFSET 0))
	AND ($4::timestamptz IS NULL OR r.last_updated >= $4::timestamptz)
	AND ($7::text = '' OR r.site = $7::text)
	AND ($8::timestamptz IS NULL OR r.effective >= $8::timestamptz)
	AND ($9::timestamptz IS NULL OR r.effective < $9::timestamptz)
	AND ($10::timestamptz IS NULL OR r.effective < $10::timestamptz
		OR (r.effective = $10::timestamptz AND r.id < $5::text))
	ORDER BY r.effective DESC NULLS LAST, r.id DESC LIMIT $6::bigint`

	// resourcesByEffectiveAscBoundedSQL and resourcesByEffectiveDescBoundedSQL are the same
	// walks when a date bound is given: $8/$9 bound effective to [from, to) as a range of the
	// index (an unset bound is -infinity or infinity), also in a generic plan, so that the
	// walk starts at the first row in range and ends at the last one, whatever the patient's
	// history outside it. Without a bound the walk needs none (and must keep the rows without
	// an effective time).
	resourcesByEffectiveAscBoundedSQL = resourceColumns + ` FROM resources r
	WHERE r.patient_index = $2::bytea AND r.type = $1::text
	AND r.effective >= coalesce($8::timestamptz, '-infinity') AND r.effective < coalesce($9::timestamptz, 'infinity')
	AND ($3::bytea IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = $3::bytea OFFSET 0))
	AND ($4::timestamptz IS NULL OR r.last_updated >= $4::timestamptz)
	AND ($7::text = '' OR r.site = $7::text)
	AND ($10::timestamptz IS NULL OR r.effective > $10::timestamptz
		OR (r.effective = $10::timestamptz AND r.id > $5::text))
	ORDER BY r.effective ASC NULLS FIRST, r.id ASC LIMIT $6::bigint`

	resourcesByEffectiveDescBoundedSQL = resourceColumns + ` FROM resources r
	WHERE r.patient_index = $2::bytea AND r.type = $1::text
	AND r.effective >= coalesce($8::timestamptz, '-infinity') AND r.effective < coalesce($9::timestamptz, 'infinity')
	AND ($3::bytea IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = $3::bytea OFFSET 0))
	AND ($4::timestamptz IS NULL OR r.last_updated >= $4::timestamptz)
	AND ($7::text = '' OR r.site = $7::text)
	AND ($10::timestamptz IS NULL OR r.effective < $10::timestamptz
		OR (r.effective = $10::timestamptz AND r.id < $5::text))
	ORDER BY r.effective DESC NULLS LAST, r.id DESC LIMIT $6::bigint`

	// resourcesByTypeSQL walks the primary key.
	resourcesByTypeSQL = resourceColumns + ` FROM resources r
	WHERE r.type = $1::text AND r.id > $5::text
	AND ($2::bytea IS NULL OR r.patient_index = $2::bytea)
	AND ($3::bytea IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = $3::bytea))
	AND ($4::timestamptz IS NULL OR r.last_updated >= $4::timestamptz)
	AND ($7::text = '' OR r.site = $7::text)
	ORDER BY r.id LIMIT $6::bigint`

	// resourcesAllSQL scans every resource (export), sorted by id.
	resourcesAllSQL = resourceColumns + ` FROM resources r
	WHERE r.id > $5::text
	AND ($1::text = '' OR r.type = $1::text)
	AND ($2::bytea IS NULL OR r.patient_index = $2::bytea)
	AND ($3::bytea IS NULL OR EXISTS (SELECT 1 FROM resource_codes c
		WHERE c.type = r.type AND c.id = r.id AND c.code_index = $3::bytea))
	AND ($4::timestamptz IS NULL OR r.last_updated >= $4::timestamptz)
	AND ($7::text = '' OR r.site = $7::text)
	ORDER BY r.id, r.type LIMIT $6::bigint`

	selectDataKeySQL = `SELECT patient_index, wrapped, created_at, site FROM data_keys WHERE patient_index = $1`
	insertDataKeySQL = `INSERT INTO data_keys (patient_index, wrapped, created_at, site) VALUES ($1, $2, $3, $4)
	ON CONFLICT (patient_index) DO NOTHING`
	// pageDataKeysSQL locks a page of data keys in patient index order for the rewrap.
	pageDataKeysSQL = `SELECT patient_index, wrapped, created_at, site FROM data_keys
	WHERE $1::bytea IS NULL OR patient_index > $1::bytea ORDER BY patient_index LIMIT $2 FOR UPDATE`
	updateDataKeysSQL = `UPDATE data_keys d SET wrapped = u.wrapped
	FROM unnest($1::bytea[], $2::bytea[]) AS u(patient_index, wrapped) WHERE d.patient_index = u.patient_index`
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

// CreateResources durably stores rs and appends the audit entries, in one transaction: all or
// none. Concurrent callers (and AppendAudit callers) on one DB share one transaction and one
// commit (group commit), each caller's rows under its own savepoint, so one caller's failure
// leaves none of its resources and none of its audit entries and does not affect another
// caller. The whole group goes to the server as one pipelined batch, with the audit lock
// taken by its last statement before the commit. A zero LastUpdated is set to the current
// time. With no resources it writes nothing, audit entries included.
//
// If ctx is done before the writer takes the call, CreateResources returns ctx.Err() and
// nothing is written. Once taken, it waits for its group's commit, so that a nil error means
// durable and an error means not written (but see the package documentation on a connection
// that breaks during the commit).
//
// Returns ECONFLICT if an id exists or repeats in rs, EINVALID for a resource without type,
// id or body or for an empty audit entry, EUNAVAILABLE when the database is unreachable,
// busy, full or closed. If the connection breaks during the commit, the outcome is unknown:
// a retry answers ECONFLICT if the first attempt committed.
func (db *DB) CreateResources(ctx context.Context, rs []vitalgate.SealedResource, audit ...[]byte) error {
	if len(rs) == 0 {
		return nil
	}
	if err := vitalgate.CheckWrite(rs, audit); err != nil {
		return err
	}
	_, err := db.submit(ctx, db.newResourceRows(rs), audit)
	return err
}

// pgTime returns t as a timestamptz, NULL for the zero time.
func pgTime(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t.UTC().Truncate(time.Microsecond), Valid: true}
}

// resourceRow is what resourceColumns scan into.
type resourceRow struct {
	r                  vitalgate.SealedResource
	version            int64
	effective, updated *time.Time
}

func (x *resourceRow) targets() []any {
	return []any{&x.r.Type, &x.r.ID, &x.version, &x.r.PatientIndex, &x.effective, &x.updated, &x.r.Body, &x.r.Site,
		&x.r.CodeIndexes, &x.r.IdentifierIndexes}
}

// resource returns the scanned resource. pgx scans bytea and arrays into new slices, so the
// result stays valid when the next row is scanned.
func (x *resourceRow) resource() vitalgate.SealedResource {
	r := x.r
	r.Version = int(x.version)
	r.Effective, r.LastUpdated = goTime(x.effective), goTime(x.updated)
	return r
}

func scanResource(row pgx.Row) (vitalgate.SealedResource, error) {
	var x resourceRow
	err := row.Scan(x.targets()...)
	return x.resource(), err
}

// Resource returns one resource. Returns ENOTFOUND.
func (db *DB) Resource(ctx context.Context, typ, id string) (vitalgate.SealedResource, error) {
	r, err := scanResource(db.pool.QueryRow(ctx, selectResourceSQL, typ, id))
	if err != nil {
		return vitalgate.SealedResource{}, mapError(err, "resource")
	}
	return r, nil
}

// Resources calls fn for every resource matching f, in ascending id order (ties between
// types broken by type), or in (Effective, ID) order with ByEffective, stopping at the first
// error fn returns and returning it unchanged. Rows are streamed from one statement's
// snapshot while fn runs; fn may call the store (it gets another connection). A Limit of zero
// or less means no limit. A search by date needs a patient and a type (EINVALID otherwise).
func (db *DB) Resources(ctx context.Context, f vitalgate.ResourceFilter, fn func(vitalgate.SealedResource) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	var limit any
	if f.Limit > 0 {
		limit = int64(f.Limit)
	}
	typ, patient, code, since, after := f.Type, dbBlob(f.PatientIndex), dbBlob(f.CodeIndex), dbTime(f.Since), f.After
	from, to, afterEff := dbTime(f.EffectiveFrom), dbTime(f.EffectiveTo), dbTime(f.AfterEffective)

	lead := f.Lead()
	site := f.Site
	if lead == vitalgate.LeadPatientsByIdentifier {
		site = vitalgate.StoredSite(site) // a Patient identifier is unique within one site
	}
	args := []any{typ, patient, code, since, after, limit, site}
	query := resourceQueries[lead]
	switch lead {
	case vitalgate.LeadEffectiveAsc, vitalgate.LeadEffectiveDesc:
		if from != nil || to != nil { // a date bound is an index range
			query = boundedEffectiveQueries[lead-vitalgate.LeadEffectiveAsc]
		}
		args = append(args, from, to, afterEff)
	case vitalgate.LeadPatientIdentifier, vitalgate.LeadPatientsByIdentifier:
		args = append(args, f.IdentifierIndex)
	}
	// assurance:sql-ok query is one of this package's SQL constants (resourceQueries, boundedEffectiveQueries)
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return mapError(err, "resources")
	}
	// fn's error is returned unchanged; only the database's goes through mapError.
	var (
		r     resourceRow
		fnErr error
	)
	_, err = pgx.ForEachRow(rows, r.targets(), func() error {
		fnErr = fn(r.resource())
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	return mapError(err, "resources")
}

// DataKey returns the wrapped data key for a patient. Returns ENOTFOUND.
func (db *DB) DataKey(ctx context.Context, patientIndex []byte) (vitalgate.DataKey, error) {
	k, err := scanDataKey(db.pool.QueryRow(ctx, selectDataKeySQL, dbBlob(patientIndex)))
	if err != nil {
		return vitalgate.DataKey{}, mapError(err, "data key")
	}
	return k, nil
}

func scanDataKey(row pgx.Row) (vitalgate.DataKey, error) {
	var (
		k       vitalgate.DataKey
		created *time.Time
	)
	err := row.Scan(&k.PatientIndex, &k.Wrapped, &created, &k.Site)
	k.CreatedAt = goTime(created)
	return k, err
}

// PutDataKey stores a patient's wrapped data key if none exists yet and returns the one that
// is stored afterwards: the caller's, or the one stored first (first writer wins, across
// nodes). The insert (ON CONFLICT DO NOTHING, which waits for a concurrent insert of the same
// key to commit or roll back) and the read that follows it, with a fresh snapshot, go as one
// batch. A zero CreatedAt is set to the current time.
func (db *DB) PutDataKey(ctx context.Context, k vitalgate.DataKey) (vitalgate.DataKey, error) {
	if err := vitalgate.CheckDataKey(k); err != nil {
		return vitalgate.DataKey{}, err
	}
	b := &pgx.Batch{}
	b.Queue(insertDataKeySQL, k.PatientIndex, k.Wrapped, dbTime(db.orNow(k.CreatedAt)), vitalgate.StoredSite(k.Site))
	b.Queue(selectDataKeySQL, k.PatientIndex)
	br := db.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	var stored vitalgate.DataKey
	if err == nil {
		stored, err = scanDataKey(br.QueryRow())
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return vitalgate.DataKey{}, mapError(err, "data key")
	}
	return stored, nil
}

// RewrapDataKeys replaces every wrapped data key with rewrap's result, in one transaction,
// and returns how many changed. Keys are read in pages locked with SELECT … FOR UPDATE, so a
// concurrent rewrap on another node waits, and each page's changes are written with one
// UPDATE. An error from rewrap aborts the transaction (nothing changes) and is returned
// unchanged. rewrap runs while the transaction is open and must not write data keys through
// the store.
func (db *DB) RewrapDataKeys(ctx context.Context, rewrap func(vitalgate.DataKey) ([]byte, bool, error)) (int, error) {
	changed := 0
	err := db.inTx(ctx, nil, func(tx pgx.Tx) error {
		var after []byte // nil: from the start
		for {
			keys, err := dataKeyPage(ctx, tx, after)
			if err != nil {
				return err
			}
			var idx, wrapped [][]byte
			for _, k := range keys {
				w, ok, err := rewrap(k)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				if len(w) == 0 {
					return vitalgate.Errorf(vitalgate.EINVALID, "rewrapped data key is empty")
				}
				idx, wrapped = append(idx, k.PatientIndex), append(wrapped, w)
			}
			if len(idx) > 0 {
				tag, err := tx.Exec(ctx, updateDataKeysSQL, idx, wrapped)
				if err != nil {
					return mapError(err, "data key")
				}
				changed += int(tag.RowsAffected())
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

// dataKeyPage reads and locks up to rewrapPage data keys after the given patient index.
func dataKeyPage(ctx context.Context, tx pgx.Tx, after []byte) ([]vitalgate.DataKey, error) {
	rows, err := tx.Query(ctx, pageDataKeysSQL, dbBlob(after), rewrapPage)
	if err != nil {
		return nil, mapError(err, "data keys")
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (vitalgate.DataKey, error) { return scanDataKey(row) })
	return keys, mapError(err, "data keys")
}

const selectConflictsSQL = `SELECT DISTINCT id, kept_id FROM patient_identifier_conflicts ORDER BY id, kept_id`

// PatientIdentifierConflicts lists the Patients whose identifier an older Patient kept when
// migration 0004 made Patient identifiers unique (see vitalgate.IdentifierConflict). It is
// empty for a database created since.
func (db *DB) PatientIdentifierConflicts(ctx context.Context) ([]vitalgate.IdentifierConflict, error) {
	rows, err := db.pool.Query(ctx, selectConflictsSQL)
	if err != nil {
		return nil, mapError(err, "identifier conflicts")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (vitalgate.IdentifierConflict, error) {
		var c vitalgate.IdentifierConflict
		err := row.Scan(&c.ID, &c.KeptID)
		return c, err
	})
	return out, mapError(err, "identifier conflicts")
}
