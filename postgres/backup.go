package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate/rowiter"
)

// What package backup needs from a PostgreSQL store: the destruction of an erased patient's
// data keys when a restore replays an erasure tombstone into a database restored from its
// own backup (pg_restore). The database itself is backed up with PostgreSQL's tools.

const dataKeysSQL = `SELECT site, patient_index FROM data_keys ORDER BY site, patient_index`

// EachDataKey calls fn with the site and patient blind index of every stored data key.
func (db *DB) EachDataKey(ctx context.Context, fn func(site string, patientIndex []byte) error) error {
	rows, err := db.pool.Query(ctx, dataKeysSQL)
	if err != nil {
		return mapError(err, "data keys")
	}
	defer rows.Close()
	return rowiter.EachPair(rows, mapping("data keys"), fn)
}

// ShredPatient deletes a patient's data key, resources, index rows, assignments and care
// team links, as ErasePatient does but without an erasure request (a restore replaying an
// erasure made after the backup), with the audit entries in the same transaction. It returns
// the number of data keys deleted.
func (db *DB) ShredPatient(ctx context.Context, site string, patientIndex []byte, audit ...[]byte) (int, error) {
	var keys int
	err := db.inTx(ctx, audit, func(tx pgx.Tx) error {
		out, err := deletePatientTx(ctx, tx, site, patientIndex)
		keys = out.DataKeys
		return err
	})
	return keys, err
}
