package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/vitalgate/vitalgate"
)

const (
	insertClientSQL = `INSERT INTO clients (id, role, secret_hash, scopes, created_at, disabled)
	VALUES (?, ?, ?, ?, ?, ?)`
	selectClientSQL = `SELECT id, role, secret_hash, scopes, created_at, disabled FROM clients WHERE id = ?`
)

// CreateClient registers a client. A zero CreatedAt is set to the current time. Scopes are
// stored as a JSON array. Returns ECONFLICT if the id exists.
func (db *DB) CreateClient(ctx context.Context, c vitalgate.Client) error {
	if c.ID == "" {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "Client.id", "client id is empty")
	}
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	js, err := json.Marshal(scopes)
	if err != nil {
		return vitalgate.Internal(err, "sqlite: encode scopes")
	}
	_, err = db.w.ExecContext(ctx, insertClientSQL, c.ID, string(c.Role), c.SecretHash, string(js),
		dbTime(db.orNow(c.CreatedAt)), c.Disabled)
	return mapError(err, "client")
}

// Client returns a client by id. Returns ENOTFOUND.
func (db *DB) Client(ctx context.Context, id string) (vitalgate.Client, error) {
	var (
		c       vitalgate.Client
		role    string
		scopes  string
		created sql.NullInt64
	)
	err := db.r.QueryRowContext(ctx, selectClientSQL, id).Scan(&c.ID, &role, &c.SecretHash, &scopes,
		&created, &c.Disabled)
	if err != nil {
		return vitalgate.Client{}, mapError(err, "client")
	}
	if err := json.Unmarshal([]byte(scopes), &c.Scopes); err != nil {
		return vitalgate.Client{}, vitalgate.Internal(err, "sqlite: decode scopes of client "+id)
	}
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
	c.Role = vitalgate.Role(role)
	c.CreatedAt = goTime(created)
	return c, nil
}
