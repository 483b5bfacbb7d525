// Package site is the capability that administers sites (tenants: the hospitals or
// facilities one deployment serves) and device models (the patient-binding policy of the
// devices of a model). Every site and model change is written with its audit entry in one
// transaction. The rule that a principal acts only within its site lives in the capability
// that serves each act (registry, auth, ingest, access, auditquery), once each; this package
// owns the records they check against.
package site

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Store is what site administration needs from storage.
type Store interface {
	vitalgate.SiteStore
	vitalgate.ModelStore
	vitalgate.CareUnitStore
	// Device returns a device. ENOTFOUND.
	Device(ctx context.Context, id string) (vitalgate.Device, error)
}

// Keys makes a site's own key-encryption key (package vault, in the data directory's
// keys/sites/<id>/). CreateSiteKeys returns ECONFLICT when the site has keys already.
type Keys interface {
	CreateSiteKeys(site string) error
}

// Admin is an operator's administration of sites and device models.
type Admin struct {
	Store    Store
	Keys     Keys             // required to add a site with its own keys
	Operator string           // who acts, for the audit entries
	Now      func() time.Time // nil: time.Now
	// Index is the blind index of a patient id within a site (vault.SitePatientIndex): the
	// admissions to care units name patients by it only.
	Index func(site, patientID string) []byte
}

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (a *Admin) entry(action, subtype, site, resource, desc string) []byte {
	return audit.Entry{Time: a.now(), Action: action, Type: "admin", Subtype: subtype,
		AgentType: audit.AgentOperator, AgentID: a.Operator, Outcome: audit.OutcomeSuccess,
		Resources: []string{resource}, OutcomeDesc: desc, Site: site}.Marshal()
}

// MaxNameLen bounds a site's name (bytes).
const MaxNameLen = 200

// Add registers site id named name. With ownKeys the site gets its own key-encryption key
// first, which wraps every data key of its patients (so that it is rotated on its own:
// `vitalgate keys rotate --site`). Errors: EINVALID (id, name), ECONFLICT (the site exists).
func (a *Admin) Add(ctx context.Context, id, name string, ownKeys bool) (vitalgate.Site, error) {
	if err := vitalgate.CheckSiteID(id); err != nil {
		return vitalgate.Site{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return vitalgate.Site{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "name", "a site name is 1 to %d printable characters", MaxNameLen)
	}
	if _, err := a.Store.Site(ctx, id); err == nil {
		return vitalgate.Site{}, vitalgate.Errorf(vitalgate.ECONFLICT, "site %q exists already", id)
	} else if vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		return vitalgate.Site{}, err
	}
	if ownKeys {
		if a.Keys == nil {
			return vitalgate.Site{}, errors.New("site: a site with its own keys needs the key directory")
		}
		// A key left by an earlier attempt whose record was not written is kept and used.
		if err := a.Keys.CreateSiteKeys(id); err != nil && vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
			return vitalgate.Site{}, err
		}
	}
	s := vitalgate.Site{ID: id, Name: name, OwnKeys: ownKeys, CreatedAt: a.now()}
	desc := "deployment key-encryption key"
	if ownKeys {
		desc = "own key-encryption key"
	}
	if err := a.Store.CreateSite(ctx, s, a.entry(audit.ActionCreate, "site-add", id, "Organization/"+id, desc)); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return vitalgate.Site{}, vitalgate.Errorf(vitalgate.ECONFLICT, "site %q exists already", id)
		}
		return vitalgate.Site{}, err
	}
	return s, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// List returns every site, ordered by id.
func (a *Admin) List(ctx context.Context) ([]vitalgate.Site, error) { return a.Store.Sites(ctx) }

var modelPattern = regexp.MustCompile(`^[A-Za-z0-9\-._]{1,64}$`)

func checkModel(id string, b vitalgate.Binding) error {
	if !modelPattern.MatchString(id) {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "id", "a model id is 1 to 64 letters, digits, '-', '.' or '_'")
	}
	if !b.Valid() {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "binding", "the binding is %q or %q", vitalgate.BindingAssigned, vitalgate.BindingIdentified)
	}
	return nil
}

// AddModel registers device model id with its patient-binding policy and, when idevidCA is
// not empty, the PEM certificates of the maker CAs of its devices' manufacturer identities
// (IDevID: zero-touch enrollment). Errors: EINVALID, ECONFLICT.
func (a *Admin) AddModel(ctx context.Context, id string, b vitalgate.Binding, idevidCA []byte) (vitalgate.DeviceModel, error) {
	if err := checkModel(id, b); err != nil {
		return vitalgate.DeviceModel{}, err
	}
	now := a.now()
	m := vitalgate.DeviceModel{ID: id, Binding: b, IDevIDCA: idevidCA, CreatedAt: now, UpdatedAt: now}
	text, err := modelText(m)
	if err != nil {
		return vitalgate.DeviceModel{}, err
	}
	if err := a.Store.CreateModel(ctx, m, a.entry(audit.ActionCreate, "model-add", "", "DeviceDefinition/"+id, text)); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return vitalgate.DeviceModel{}, vitalgate.Errorf(vitalgate.ECONFLICT, "model %q exists already; change it with model set", id)
		}
		return vitalgate.DeviceModel{}, err
	}
	return m, nil
}

// ModelChange is what SetModel changes; zero fields stay as they are.
type ModelChange struct {
	Binding  vitalgate.Binding // empty: unchanged
	IDevIDCA []byte            // nil: unchanged
	NoIDevID bool              // remove the IDevID CAs: the model's devices enroll with secrets only
	// Site, when set, makes Binding the setting of that site's devices of the model only
	// (the IDevID CAs are the maker's, for every site); ResetSite removes the site's own
	// setting, so that the model's binding holds for it again.
	Site      string
	ResetSite bool
}

// SetModel changes device model id's patient-binding policy or IDevID CAs; the change holds
// for every device of the model within the registry's staleness bound. Errors: EINVALID,
// ENOTFOUND.
func (a *Admin) SetModel(ctx context.Context, id string, c ModelChange) (vitalgate.DeviceModel, error) {
	m, err := a.Store.Model(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.DeviceModel{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "no model %q is registered; add it with model add", id)
	} else if err != nil {
		return vitalgate.DeviceModel{}, err
	}
	if c.Site != "" || c.ResetSite {
		return a.setSiteBinding(ctx, m, c)
	}
	switch {
	case c.Binding == "" && c.IDevIDCA == nil && !c.NoIDevID:
		return vitalgate.DeviceModel{}, vitalgate.Errorf(vitalgate.EINVALID, "nothing to change: give a binding, an IDevID CA file or the removal of the IDevID CAs")
	case c.IDevIDCA != nil && c.NoIDevID:
		return vitalgate.DeviceModel{}, vitalgate.Errorf(vitalgate.EINVALID, "give either new IDevID CAs or their removal, not both")
	}
	if c.Binding != "" {
		m.Binding = c.Binding
	}
	if c.IDevIDCA != nil {
		m.IDevIDCA = c.IDevIDCA
	}
	if c.NoIDevID {
		m.IDevIDCA = nil
	}
	if err := checkModel(id, m.Binding); err != nil {
		return vitalgate.DeviceModel{}, err
	}
	m.UpdatedAt = a.now()
	text, err := modelText(m)
	if err != nil {
		return vitalgate.DeviceModel{}, err
	}
	if err := a.Store.UpdateModel(ctx, m, a.entry(audit.ActionUpdate, "model-set", "", "DeviceDefinition/"+id, text)); err != nil {
		return vitalgate.DeviceModel{}, err
	}
	return m, nil
}

// setSiteBinding sets or removes site c.Site's own binding of model m.
func (a *Admin) setSiteBinding(ctx context.Context, m vitalgate.DeviceModel, c ModelChange) (vitalgate.DeviceModel, error) {
	switch {
	case c.Site == "":
		return vitalgate.DeviceModel{}, vitalgate.Errorf(vitalgate.EINVALID, "resetting a site's binding needs the site")
	case c.IDevIDCA != nil || c.NoIDevID:
		return vitalgate.DeviceModel{}, vitalgate.Errorf(vitalgate.EINVALID, "IDevID CAs are the maker's and hold for every site: change them without a site")
	case c.ResetSite == (c.Binding != ""):
		return vitalgate.DeviceModel{}, vitalgate.Errorf(vitalgate.EINVALID, "for a site, give the binding of its devices (--binding) or remove its own (--reset-site)")
	}
	if _, err := a.Store.Site(ctx, c.Site); vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.DeviceModel{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "no site %q is registered; add it with site add", c.Site)
	} else if err != nil {
		return vitalgate.DeviceModel{}, err
	}
	bindings := maps.Clone(m.SiteBindings)
	text := "site " + c.Site + " binding "
	if c.ResetSite {
		if _, ok := bindings[c.Site]; !ok {
			return vitalgate.DeviceModel{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "site %q has no binding of its own for model %q", c.Site, m.ID)
		}
		delete(bindings, c.Site)
		text += "reset to the model's " + string(m.Binding)
	} else {
		if !c.Binding.Valid() {
			return vitalgate.DeviceModel{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "binding", "the binding is %q or %q", vitalgate.BindingAssigned, vitalgate.BindingIdentified)
		}
		if bindings == nil {
			bindings = map[string]vitalgate.Binding{}
		}
		bindings[c.Site] = c.Binding
		text += string(c.Binding)
	}
	m.SiteBindings, m.UpdatedAt = bindings, a.now()
	if err := a.Store.UpdateModel(ctx, m, a.entry(audit.ActionUpdate, "model-set", c.Site, "DeviceDefinition/"+m.ID, text)); err != nil {
		return vitalgate.DeviceModel{}, err
	}
	return m, nil
}

// modelText is a model's settings for its audit entry: the binding and the SHA-256
// fingerprints of its IDevID CAs. It checks the CA bundle.
func modelText(m vitalgate.DeviceModel) (string, error) {
	text := "binding " + string(m.Binding)
	if len(m.IDevIDCA) == 0 {
		return text, nil
	}
	cas, err := vitalgate.ParseIDevIDCAs(m.IDevIDCA)
	if err != nil {
		return "", err
	}
	for _, c := range cas {
		sum := sha256.Sum256(c.Raw)
		text += "; IDevID CA sha256:" + hex.EncodeToString(sum[:])
	}
	return text, nil
}

// Models returns every device model, ordered by id.
func (a *Admin) Models(ctx context.Context) ([]vitalgate.DeviceModel, error) {
	return a.Store.Models(ctx)
}
