package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vitalgate/vitalgate"
)

const (
	insertClientSQL = `INSERT INTO clients (id, role, secret_hash, scopes, created_at, disabled, jwks, site, other_sites)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	insertClientPatientsSQL = `INSERT INTO client_patients (client_id, patient_index)
	SELECT $1, p FROM unnest($2::bytea[]) AS p ON CONFLICT DO NOTHING`
	selectClientSQL = `SELECT c.id, c.role, c.secret_hash, c.scopes, c.created_at, c.disabled, c.jwks,
	(SELECT array_agg(p.patient_index ORDER BY p.patient_index) FROM client_patients p WHERE p.client_id = c.id), c.site, c.other_sites
	FROM clients c WHERE c.id = $1`

	updateClientSQL = `UPDATE clients SET role = $2, secret_hash = $3, scopes = $4, disabled = $5, jwks = $6
	WHERE id = $1`
	deleteClientPatientsSQL = `DELETE FROM client_patients WHERE client_id = $1`
	selectClientsSQL        = `SELECT c.id, c.role, c.secret_hash, c.scopes, c.created_at, c.disabled, c.jwks,
	(SELECT array_agg(p.patient_index ORDER BY p.patient_index) FROM client_patients p WHERE p.client_id = c.id), c.site, c.other_sites
	FROM clients c ORDER BY c.id`

	// deleteNoncesSQL forgets up to 256 expired nonces, skipping rows another caller is
	// deleting (no waiting, no deadlock); useNonceSQL records one, or renews an expired one
	// not yet forgotten, and affects no row if the key is recorded and live. ON CONFLICT
	// makes concurrent uses of one key, on any node, succeed exactly once.
	deleteNoncesSQL = `DELETE FROM nonces WHERE key IN (
	SELECT key FROM nonces WHERE expires < $1 LIMIT 256 FOR UPDATE SKIP LOCKED)`
	useNonceSQL = `INSERT INTO nonces (key, expires) VALUES ($1, $2)
	ON CONFLICT (key) DO UPDATE SET expires = excluded.expires WHERE nonces.expires < $3`
)

// CreateClient registers a client with its care team and appends the audit entries, in one
// transaction. A zero CreatedAt is set to the current time. Returns ECONFLICT if the id
// exists.
func (db *DB) CreateClient(ctx context.Context, c vitalgate.Client, audit ...[]byte) error {
	if c.ID == "" {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "Client.id", "client id is empty")
	}
	if err := vitalgate.CheckClientSites(c); err != nil {
		return err
	}
	scopes, patients := clientColumns(c)
	others := c.OtherSites
	if others == nil {
		others = []string{}
	}
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertClientSQL, c.ID, string(c.Role), c.SecretHash, scopes,
			dbTime(db.orNow(c.CreatedAt)), c.Disabled, dbBlob(c.JWKS), vitalgate.StoredSite(c.Site), others); err != nil {
			return mapError(err, "client")
		}
		if len(patients) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, insertClientPatientsSQL, c.ID, patients)
		return mapError(err, "client")
	})
}

// clientColumns returns the stored forms of a client's scopes and care team.
func clientColumns(c vitalgate.Client) ([]string, [][]byte) {
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	var patients [][]byte
	for _, p := range c.PatientIndexes {
		if len(p) > 0 {
			patients = append(patients, p)
		}
	}
	return scopes, patients
}

// Client returns a client by id, with its care team sorted. Returns ENOTFOUND.
func (db *DB) Client(ctx context.Context, id string) (vitalgate.Client, error) {
	return scanClient(db.pool.QueryRow(ctx, selectClientSQL, id))
}

// scanClient reads one row of selectClientSQL or selectClientsSQL.
func scanClient(row pgx.Row) (vitalgate.Client, error) {
	var (
		c       vitalgate.Client
		role    string
		created *time.Time
	)
	err := row.Scan(&c.ID, &role, &c.SecretHash, &c.Scopes, &created, &c.Disabled, &c.JWKS, &c.PatientIndexes, &c.Site, &c.OtherSites)
	if err != nil {
		return vitalgate.Client{}, mapError(err, "client")
	}
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
	if len(c.OtherSites) == 0 {
		c.OtherSites = nil
	}
	c.Role = vitalgate.Role(role)
	c.CreatedAt = goTime(created)
	return c, nil
}

// UseNonce records key until expires, forgetting expired ones. Returns ECONFLICT if key is
// recorded and has not expired.
func (db *DB) UseNonce(ctx context.Context, key string, expires time.Time) error {
	now := dbTime(db.opts.Now())
	b := &pgx.Batch{}
	b.Queue(deleteNoncesSQL, now)
	b.Queue(useNonceSQL, key, dbTime(expires), now)
	br := db.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	var tag pgconn.CommandTag
	if err == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return mapError(err, "nonce")
	}
	if tag.RowsAffected() == 0 {
		return vitalgate.Errorf(vitalgate.ECONFLICT, "nonce used already")
	}
	return nil
}

// UpdateClient replaces an existing client's role, secret hash, scopes, keys, care team and
// disabled flag and appends the audit entries, in one transaction. Returns ENOTFOUND if no
// client has the id.
func (db *DB) UpdateClient(ctx context.Context, c vitalgate.Client, audit ...[]byte) error {
	if c.ID == "" {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "Client.id", "client id is empty")
	}
	scopes, patients := clientColumns(c)
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, updateClientSQL, c.ID, string(c.Role), c.SecretHash, scopes, c.Disabled, dbBlob(c.JWKS))
		if err != nil {
			return mapError(err, "client")
		}
		if tag.RowsAffected() == 0 {
			return vitalgate.Errorf(vitalgate.ENOTFOUND, "no client has this id")
		}
		if _, err := tx.Exec(ctx, deleteClientPatientsSQL, c.ID); err != nil {
			return mapError(err, "client")
		}
		if len(patients) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, insertClientPatientsSQL, c.ID, patients)
		return mapError(err, "client")
	})
}

// Clients returns every client, ordered by id, each with its care team sorted.
func (db *DB) Clients(ctx context.Context) ([]vitalgate.Client, error) {
	rows, err := db.pool.Query(ctx, selectClientsSQL)
	if err != nil {
		return nil, mapError(err, "client")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (vitalgate.Client, error) { return scanClient(r) })
	if err != nil {
		return nil, mapError(err, "client")
	}
	return out, nil
}
