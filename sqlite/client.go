package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/vitalgate/vitalgate"
)

const (
	insertClientSQL = `INSERT INTO clients (id, role, secret_hash, scopes, created_at, disabled, jwks, site, other_sites)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	selectClientSQL        = `SELECT id, role, secret_hash, scopes, created_at, disabled, jwks, site, other_sites FROM clients WHERE id = ?`
	insertClientPatientSQL = `INSERT OR IGNORE INTO client_patients (client_id, patient_index) VALUES (?, ?)`
	selectClientPatientSQL = `SELECT patient_index FROM client_patients WHERE client_id = ? ORDER BY patient_index`
	updateClientSQL        = `UPDATE clients SET role = ?, secret_hash = ?, scopes = ?, disabled = ?, jwks = ? WHERE id = ?`
	deleteClientPatientSQL = `DELETE FROM client_patients WHERE client_id = ?`
	selectClientIDsSQL     = `SELECT id FROM clients ORDER BY id`
	deleteNoncesSQL        = `DELETE FROM nonces WHERE expires < ?`
	insertNonceSQL         = `INSERT INTO nonces (key, expires) VALUES (?, ?)`
)

// CreateClient registers a client and appends the audit entries, in one transaction. A zero
// CreatedAt is set to the current time. Scopes are stored as a JSON array. Returns ECONFLICT
// if the id exists, EINVALID for an empty id or audit entry.
func (db *DB) CreateClient(ctx context.Context, c vitalgate.Client, audit ...[]byte) error {
	if c.ID == "" {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "Client.id", "client id is empty")
	}
	if err := vitalgate.CheckClientSites(c); err != nil {
		return err
	}
	others := c.OtherSites
	if others == nil {
		others = []string{}
	}
	osj, err := json.Marshal(others)
	if err != nil {
		return vitalgate.Internal(err, "sqlite: encode the client's other sites")
	}
	js, tx, err := db.beginClientWrite(ctx, c, audit)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err = tx.ExecContext(ctx, insertClientSQL, c.ID, string(c.Role), c.SecretHash, js,
		dbTime(db.orNow(c.CreatedAt)), c.Disabled, dbBlob(c.JWKS), vitalgate.StoredSite(c.Site), string(osj)); err != nil {
		return mapError(err, "client")
	}
	for _, p := range c.PatientIndexes {
		if _, err := tx.ExecContext(ctx, insertClientPatientSQL, c.ID, p); err != nil {
			return mapError(err, "client")
		}
	}
	if err := db.appendAuditTx(ctx, tx, audit); err != nil {
		return err
	}
	return mapError(tx.Commit(), "client")
}

// beginClientWrite checks the audit entries, encodes the client's scopes (a JSON array)
// and begins the write transaction.
func (db *DB) beginClientWrite(ctx context.Context, c vitalgate.Client, audit [][]byte) (string, *sql.Tx, error) {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return "", nil, err
	}
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	js, err := json.Marshal(scopes)
	if err != nil {
		return "", nil, vitalgate.Internal(err, "sqlite: encode scopes")
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return "", nil, mapError(err, "client")
	}
	return string(js), tx, nil
}

// UseNonce records key until expires, forgetting expired ones. Returns ECONFLICT if key is
// recorded and has not expired.
func (db *DB) UseNonce(ctx context.Context, key string, expires time.Time) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err, "nonce")
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, deleteNoncesSQL, dbTime(db.orNow(time.Time{}))); err != nil {
		return mapError(err, "nonce")
	}
	if _, err := tx.ExecContext(ctx, insertNonceSQL, key, dbTime(expires)); err != nil {
		return mapError(err, "nonce")
	}
	return mapError(tx.Commit(), "nonce")
}

// Client returns a client by id. Returns ENOTFOUND.
func (db *DB) Client(ctx context.Context, id string) (vitalgate.Client, error) {
	var (
		c       vitalgate.Client
		role    string
		scopes  string
		others  string
		created sql.NullInt64
	)
	err := db.queryRow(ctx, selectClientSQL, id).Scan(&c.ID, &role, &c.SecretHash, &scopes,
		&created, &c.Disabled, &c.JWKS, &c.Site, &others)
	if err != nil {
		return vitalgate.Client{}, mapError(err, "client")
	}
	rows, err := db.query(ctx, selectClientPatientSQL, id)
	if err != nil {
		return vitalgate.Client{}, mapError(err, "client")
	}
	defer rows.Close()
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			return vitalgate.Client{}, mapError(err, "client")
		}
		c.PatientIndexes = append(c.PatientIndexes, p)
	}
	if err := rows.Err(); err != nil {
		return vitalgate.Client{}, mapError(err, "client")
	}
	if err := json.Unmarshal([]byte(scopes), &c.Scopes); err != nil {
		return vitalgate.Client{}, vitalgate.Internal(err, "sqlite: decode scopes of client "+id)
	}
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
	if err := json.Unmarshal([]byte(others), &c.OtherSites); err != nil {
		return vitalgate.Client{}, vitalgate.Internal(err, "sqlite: decode the other sites of client "+id)
	}
	if len(c.OtherSites) == 0 {
		c.OtherSites = nil
	}
	c.Role = vitalgate.Role(role)
	c.CreatedAt = goTime(created)
	return c, nil
}

// UpdateClient replaces an existing client's role, secret hash, scopes, keys, care team and
// disabled flag (never its sites) and appends the audit entries, in one transaction. Returns ENOTFOUND if no
// client has the id, EINVALID for an empty id or audit entry.
func (db *DB) UpdateClient(ctx context.Context, c vitalgate.Client, audit ...[]byte) error {
	if c.ID == "" {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "Client.id", "client id is empty")
	}
	js, tx, err := db.beginClientWrite(ctx, c, audit)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, updateClientSQL, string(c.Role), c.SecretHash, js, c.Disabled, dbBlob(c.JWKS), c.ID)
	if err != nil {
		return mapError(err, "client")
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapError(err, "client")
	} else if n == 0 {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "no client has this id")
	}
	if _, err := tx.ExecContext(ctx, deleteClientPatientSQL, c.ID); err != nil {
		return mapError(err, "client")
	}
	for _, p := range c.PatientIndexes {
		if _, err := tx.ExecContext(ctx, insertClientPatientSQL, c.ID, p); err != nil {
			return mapError(err, "client")
		}
	}
	if err := db.appendAuditTx(ctx, tx, audit); err != nil {
		return err
	}
	return mapError(tx.Commit(), "client")
}

// Clients returns every client, ordered by id.
func (db *DB) Clients(ctx context.Context) ([]vitalgate.Client, error) {
	rows, err := db.query(ctx, selectClientIDsSQL)
	if err != nil {
		return nil, mapError(err, "client")
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return nil, mapError(err, "client")
		}
		ids = append(ids, id)
	}
	err = rows.Err()
	_ = rows.Close()
	if err != nil {
		return nil, mapError(err, "client")
	}
	out := make([]vitalgate.Client, 0, len(ids))
	for _, id := range ids {
		c, err := db.Client(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
