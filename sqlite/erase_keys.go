package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/vitalgate/vitalgate"
)

const (
	retiredKEKSQL    = `SELECT 1 FROM retired_keks WHERE keyring = ? AND kek = ?`
	retireKEKSQL     = `INSERT INTO retired_keks (keyring, kek, retired_at) VALUES (?, ?, ?) ON CONFLICT (keyring, kek) DO NOTHING`
	retiredKEKsSQL   = `SELECT keyring, kek, retired_at FROM retired_keks ORDER BY keyring, kek`
	maxRetireAtOnce  = 1000
	retiredKEKsLimit = 100000
)

// PutDataKeyUnder is PutDataKey for a key wrapped under KEK kek of keyring, refused with
// ECONFLICT when that KEK is retired. The check and the insert are one write transaction
// (BEGIN IMMEDIATE on the single write connection), so they are serialized with RetireKEKs
// and with a rewrap, in this process and in any other on the same file.
func (db *DB) PutDataKeyUnder(ctx context.Context, k vitalgate.DataKey, keyring, kek string) (vitalgate.DataKey, error) {
	if err := vitalgate.CheckDataKey(k); err != nil {
		return vitalgate.DataKey{}, err
	}
	var stored vitalgate.DataKey
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, retiredKEKSQL, keyring, kek).Scan(&one)
		if err == nil {
			return vitalgate.Errorf(vitalgate.ECONFLICT, "key-encryption key %s is retired: wrap the data key under the current one", kek)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return mapError(err, "retired key-encryption keys")
		}
		if _, err := tx.ExecContext(ctx, insertDataKeySQL, k.PatientIndex, k.Wrapped,
			dbTime(db.orNow(k.CreatedAt)), vitalgate.StoredSite(k.Site)); err != nil {
			return mapError(err, "data key")
		}
		stored, err = scanDataKey(tx.QueryRowContext(ctx, selectDataKeySQL, k.PatientIndex))
		return mapError(err, "data key")
	})
	if err != nil {
		return vitalgate.DataKey{}, err
	}
	return stored, nil
}

// RetireKEKs records the KEKs ids of keyring as retired, in one write transaction.
func (db *DB) RetireKEKs(ctx context.Context, keyring string, ids []string, at time.Time) error {
	if len(ids) == 0 || len(ids) > maxRetireAtOnce {
		return vitalgate.Errorf(vitalgate.EINVALID, "retire between 1 and %d key-encryption keys at once", maxRetireAtOnce)
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if id == "" {
				return vitalgate.Errorf(vitalgate.EINVALID, "a retired key-encryption key needs its id")
			}
			if _, err := tx.ExecContext(ctx, retireKEKSQL, keyring, id, db.orNow(at).UnixMicro()); err != nil {
				return mapError(err, "retire key-encryption key")
			}
		}
		return nil
	})
}

// RetiredKEKs returns every retired KEK, by keyring and id.
func (db *DB) RetiredKEKs(ctx context.Context) ([]vitalgate.RetiredKEK, error) {
	rows, err := db.query(ctx, retiredKEKsSQL)
	if err != nil {
		return nil, mapError(err, "retired key-encryption keys")
	}
	defer rows.Close()
	var out []vitalgate.RetiredKEK
	for rows.Next() {
		var r vitalgate.RetiredKEK
		var at int64
		if err := rows.Scan(&r.Keyring, &r.KEK, &at); err != nil {
			return nil, mapError(err, "retired key-encryption keys")
		}
		r.RetiredAt = time.UnixMicro(at).UTC()
		if out = append(out, r); len(out) > retiredKEKsLimit {
			return nil, vitalgate.Errorf(vitalgate.EINTERNAL, "more than %d retired key-encryption keys", retiredKEKsLimit)
		}
	}
	return out, mapError(rows.Err(), "retired key-encryption keys")
}
