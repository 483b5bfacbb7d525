package sqlite

import (
	"context"
	"database/sql"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	insertSiteSQL  = `INSERT INTO sites (id, name, own_keys, created_at) VALUES (?, ?, ?, ?)`
	siteColumns    = `SELECT id, name, own_keys, created_at, erased_at FROM sites`
	selectSiteSQL  = siteColumns + ` WHERE id = ?`
	selectSitesSQL = siteColumns + ` ORDER BY id`

	insertModelSQL  = `INSERT INTO device_models (id, binding, idevid_ca, site_bindings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`
	updateModelSQL  = `UPDATE device_models SET binding = ?, idevid_ca = ?, site_bindings = ?, updated_at = ? WHERE id = ?`
	modelColumns    = `SELECT id, binding, idevid_ca, site_bindings, created_at, updated_at FROM device_models`
	selectModelSQL  = modelColumns + ` WHERE id = ?`
	selectModelsSQL = modelColumns + ` ORDER BY id`
)

// CreateSite registers a site and appends the audit entries, in one transaction. A zero
// CreatedAt is set to the current time. Returns ECONFLICT if the id exists, EINVALID for a
// bad id or an empty audit entry.
func (db *DB) CreateSite(ctx context.Context, s vitalgate.Site, audit ...[]byte) error {
	if err := vitalgate.CheckSiteID(s.ID); err != nil {
		return err
	}
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, insertSiteSQL, s.ID, s.Name, s.OwnKeys, dbTime(db.orNow(s.CreatedAt))); err != nil {
			return mapError(err, "site")
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

func scanSite(s rowiter.Scanner) (vitalgate.Site, error) {
	var (
		site            vitalgate.Site
		created, erased sql.NullInt64
	)
	err := s.Scan(&site.ID, &site.Name, &site.OwnKeys, &created, &erased)
	site.CreatedAt, site.ErasedAt = goTime(created), goTime(erased)
	return site, err
}

// Site returns a site by id. Returns ENOTFOUND.
func (db *DB) Site(ctx context.Context, id string) (vitalgate.Site, error) {
	s, err := scanSite(db.queryRow(ctx, selectSiteSQL, id))
	if err != nil {
		return vitalgate.Site{}, mapError(err, "site")
	}
	return s, nil
}

// Sites returns every site, ordered by id.
func (db *DB) Sites(ctx context.Context) ([]vitalgate.Site, error) {
	rows, err := db.query(ctx, selectSitesSQL)
	if err != nil {
		return nil, mapError(err, "sites")
	}
	defer rows.Close()
	out, err := rowiter.Collect(rows, scanSite)
	return out, mapError(err, "sites")
}

// CreateModel registers a device model and appends the audit entries, in one transaction.
// Returns ECONFLICT if the id exists, EINVALID for an empty id, an unknown binding or an
// empty audit entry.
func (db *DB) CreateModel(ctx context.Context, m vitalgate.DeviceModel, audit ...[]byte) error {
	if err := vitalgate.CheckModel(m); err != nil {
		return err
	}
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	created := db.orNow(m.CreatedAt)
	if m.UpdatedAt.IsZero() {
		m.UpdatedAt = created
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, insertModelSQL, m.ID, string(m.Binding), string(m.IDevIDCA), vitalgate.EncodeSiteBindings(m.SiteBindings), dbTime(created), dbTime(m.UpdatedAt)); err != nil {
			return mapError(err, "device model")
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

// UpdateModel replaces a model's binding and UpdatedAt (the current time when zero) and
// appends the audit entries, in one transaction. Returns ENOTFOUND, EINVALID.
func (db *DB) UpdateModel(ctx context.Context, m vitalgate.DeviceModel, audit ...[]byte) error {
	if err := vitalgate.CheckModel(m); err != nil {
		return err
	}
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, updateModelSQL, string(m.Binding), string(m.IDevIDCA), vitalgate.EncodeSiteBindings(m.SiteBindings), dbTime(db.orNow(m.UpdatedAt)), m.ID)
		if err != nil {
			return mapError(err, "device model")
		}
		if n, err := res.RowsAffected(); err != nil {
			return mapError(err, "device model")
		} else if n == 0 {
			return vitalgate.Errorf(vitalgate.ENOTFOUND, "no device model has this id")
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

func scanModel(s rowiter.Scanner) (vitalgate.DeviceModel, error) {
	var (
		m                vitalgate.DeviceModel
		binding, ca, sb  string
		created, updated sql.NullInt64
	)
	err := s.Scan(&m.ID, &binding, &ca, &sb, &created, &updated)
	m.Binding, m.CreatedAt, m.UpdatedAt = vitalgate.Binding(binding), goTime(created), goTime(updated)
	if ca != "" {
		m.IDevIDCA = []byte(ca)
	}
	if err == nil {
		m.SiteBindings, err = vitalgate.DecodeSiteBindings(sb)
	}
	return m, err
}

// Model returns a device model by id. Returns ENOTFOUND.
func (db *DB) Model(ctx context.Context, id string) (vitalgate.DeviceModel, error) {
	m, err := scanModel(db.queryRow(ctx, selectModelSQL, id))
	if err != nil {
		return vitalgate.DeviceModel{}, mapError(err, "device model")
	}
	return m, nil
}

// Models returns every device model, ordered by id.
func (db *DB) Models(ctx context.Context) ([]vitalgate.DeviceModel, error) {
	rows, err := db.query(ctx, selectModelsSQL)
	if err != nil {
		return nil, mapError(err, "device models")
	}
	defer rows.Close()
	out, err := rowiter.Collect(rows, scanModel)
	return out, mapError(err, "device models")
}
