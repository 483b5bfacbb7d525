package vitalgate

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"regexp"
	"time"
)

// DefaultSite is the site every record of a deployment older than sites belongs to (the
// migrations move them there), and the site of commands that name none: a deployment that
// serves one hospital never needs to name it.
const DefaultSite = "default"

// AllSites is the site of a deployment-wide principal: an auditor (or administrator) who
// sees every site's audit entries. It is never the site of a device, a patient or a
// resource, and a principal of AllSites reads no patient data.
const AllSites = "*"

// Site is a tenant of the deployment (a hospital, a facility): it owns devices, patients,
// API clients and everything recorded about them, and nothing of one site is visible to or
// writable by a principal of another.
type Site struct {
	ID   string
	Name string
	// OwnKeys is set when the site's patient data keys are wrapped by its own key-encryption
	// key (keys/sites/<id>/ in the data directory), so that it is rotated, exported or
	// crypto-shredded alone; otherwise the deployment's key-encryption key wraps them.
	OwnKeys   bool
	CreatedAt time.Time
	// ErasedAt is when the whole site was erased (crypto-shredded: ErasureStore.EraseSite);
	// zero while it serves. An erased site keeps its record, so that its id is never reused
	// and its audit entries still name it, but nothing can be added to it.
	ErasedAt time.Time
}

// CheckSiteOpen refuses an erased site for acts that add to it. EFORBIDDEN.
func CheckSiteOpen(s Site) error {
	if !s.ErasedAt.IsZero() {
		return FieldErrorf(EFORBIDDEN, "site", "site %q was erased on %s: nothing can be added to it", s.ID, s.ErasedAt.UTC().Format("2006-01-02"))
	}
	return nil
}

var siteIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9\-]{0,62}$`)

// CheckSiteID reports whether id can name a site: 1 to 63 lower-case letters, digits and
// '-', beginning with a letter or digit (it is a directory name under keys/sites/ and part of
// every audit entry). EINVALID otherwise, also for AllSites.
func CheckSiteID(id string) error {
	if !siteIDPattern.MatchString(id) {
		return FieldErrorf(EINVALID, "site", "a site id is 1 to 63 lower-case letters, digits or '-'")
	}
	return nil
}

// InSite reports whether a principal of site principal may act on a record of site record:
// the same site, and never a record without one. A deployment-wide principal (AllSites)
// acts within no site: the callers that allow it (the audit log) say so themselves.
func InSite(principal, record string) bool {
	return principal != "" && principal != AllSites && principal == record
}

// SiteStore persists sites. Trailing audit entries are appended in the same transaction.
type SiteStore interface {
	// CreateSite registers a site. Returns ECONFLICT if the id exists, EINVALID for an id
	// CheckSiteID refuses.
	CreateSite(ctx context.Context, s Site, audit ...[]byte) error
	// Site returns a site by id. Returns ENOTFOUND.
	Site(ctx context.Context, id string) (Site, error)
	// Sites returns every site, ordered by id.
	Sites(ctx context.Context) ([]Site, error)
}

// Binding is a device model's patient-binding policy: how the patient of a device's data is
// decided.
type Binding string

// Bindings.
const (
	// BindingAssigned: the device is assigned to one patient at a time (device add
	// --patient, device assign); its data belongs to the patient it was assigned to when it
	// measured, and a message naming another patient is refused. The default.
	BindingAssigned Binding = "assigned"
	// BindingIdentified: a shared point-of-care device (a glucose meter, a handheld
	// ultrasound) used on many patients; each message names its patient (FHIR subject, HL7
	// PID-3), who must exist in the device's site.
	BindingIdentified Binding = "identified"
)

// Valid reports whether b is a known binding.
func (b Binding) Valid() bool { return b == BindingAssigned || b == BindingIdentified }

// DeviceModel is a kind of device (Device.Model) and its patient-binding policy. A device
// whose model is not registered binds as BindingAssigned.
type DeviceModel struct {
	ID      string
	Binding Binding
	// IDevIDCA holds, PEM-encoded, the certificates of the maker's CAs that issue this
	// model's manufacturer identities (IDevID, IEEE 802.1AR). When set, a registered device
	// of the model enrolls with its IDevID over TLS instead of an enrollment secret
	// (zero-touch). Empty: secrets only.
	IDevIDCA []byte
	// SiteBindings overrides Binding for the devices of a site, by site id: a site settles
	// how its own devices of the model bind (its point-of-care meters identified, say, where
	// other hospitals assign them).
	SiteBindings map[string]Binding
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// BindingAt returns the model's patient-binding policy for a device of site: the site's
// own setting, or else the model's.
func (m DeviceModel) BindingAt(site string) Binding {
	if b, ok := m.SiteBindings[StoredSite(site)]; ok {
		return b
	}
	return m.Binding
}

// ModelStore persists device models. Trailing audit entries are appended in the same
// transaction.
type ModelStore interface {
	// CreateModel registers a model. Returns ECONFLICT if the id exists.
	CreateModel(ctx context.Context, m DeviceModel, audit ...[]byte) error
	// UpdateModel replaces a model's binding, IDevID CAs and UpdatedAt. Returns ENOTFOUND.
	UpdateModel(ctx context.Context, m DeviceModel, audit ...[]byte) error
	// Model returns a model by id. Returns ENOTFOUND.
	Model(ctx context.Context, id string) (DeviceModel, error)
	// Models returns every model, ordered by id.
	Models(ctx context.Context) ([]DeviceModel, error)
}

// StoredSite is the site a store writes for a record whose Site is empty: the default site,
// as the migrations' column defaults (records written by code older than sites, and by tests
// of one site). Capabilities always name the site.
func StoredSite(site string) string {
	if site == "" {
		return DefaultSite
	}
	return site
}

// CheckClientSite reports whether site can be a client's: a site id (CheckSiteID), AllSites
// or empty (StoredSite). Both stores call it, so that they refuse the same client with the same error.
func CheckClientSite(site string) error {
	if site == AllSites || site == "" {
		return nil
	}
	return CheckSiteID(site)
}

// CheckClientSites checks a client's site (CheckClientSite) and its other sites: site ids,
// none of them the deployment, its own site or named twice. Both stores call it.
func CheckClientSites(c Client) error {
	if err := CheckClientSite(c.Site); err != nil {
		return err
	}
	seen := map[string]bool{StoredSite(c.Site): true}
	for _, s := range c.OtherSites {
		if err := CheckSiteID(s); err != nil {
			return err
		}
		if c.Site == AllSites {
			return FieldErrorf(EINVALID, "site", "a deployment-wide client acts within every site already; give it no other sites")
		}
		if seen[s] {
			return FieldErrorf(EINVALID, "site", "site %q is named twice for this client", s)
		}
		seen[s] = true
	}
	return nil
}

// CheckModel reports whether a store may keep m: EINVALID for an empty id and an unknown
// binding. Both stores call it.
func CheckModel(m DeviceModel) error {
	if m.ID == "" {
		return FieldErrorf(EINVALID, "id", "device model id is empty")
	}
	if !m.Binding.Valid() {
		return FieldErrorf(EINVALID, "binding", "unknown binding %q", m.Binding)
	}
	if len(m.IDevIDCA) > 0 {
		if _, err := ParseIDevIDCAs(m.IDevIDCA); err != nil {
			return err
		}
	}
	for site, b := range m.SiteBindings {
		if err := CheckSiteID(site); err != nil {
			return err
		}
		if !b.Valid() {
			return FieldErrorf(EINVALID, "binding", "unknown binding %q for site %q", b, site)
		}
	}
	return nil
}

// EncodeSiteBindings is how both stores keep a model's SiteBindings: a JSON object, keys in
// order ("{}" when empty).
func EncodeSiteBindings(m map[string]Binding) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map of strings always encodes
	return string(b)
}

// DecodeSiteBindings reads what EncodeSiteBindings wrote; nil when empty.
func DecodeSiteBindings(s string) (map[string]Binding, error) {
	var m map[string]Binding
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, Internal(err, "device model site bindings")
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// MaxIDevIDCABytes bounds a model's IDevID CA bundle.
const MaxIDevIDCABytes = 64 << 10

// ParseIDevIDCAs parses a model's IDevID CA bundle: one or more PEM "CERTIFICATE" blocks,
// each a CA certificate (basic constraints CA, allowed to sign certificates). Errors:
// EINVALID naming what is wrong.
func ParseIDevIDCAs(pemData []byte) ([]*x509.Certificate, error) {
	if len(pemData) > MaxIDevIDCABytes {
		return nil, FieldErrorf(EINVALID, "idevid-ca", "the IDevID CA file is larger than %d KiB; give only the maker's CA certificates", MaxIDevIDCABytes>>10)
	}
	var cas []*x509.Certificate
	for rest := pemData; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if len(bytes.TrimSpace(rest)) > 0 {
				return nil, FieldErrorf(EINVALID, "idevid-ca", "the IDevID CA file has text that is not a PEM block; give PEM CERTIFICATE blocks only")
			}
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, FieldErrorf(EINVALID, "idevid-ca", "the IDevID CA file holds a %q block; give PEM CERTIFICATE blocks only (never a private key)", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, FieldErrorf(EINVALID, "idevid-ca", "an IDevID CA certificate does not parse: %v", err)
		}
		if !c.BasicConstraintsValid || !c.IsCA || (c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0) {
			return nil, FieldErrorf(EINVALID, "idevid-ca", "%q is not a CA certificate (basic constraints CA and certificate signing); give the maker's CA, not a device certificate", c.Subject.CommonName)
		}
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, FieldErrorf(EINVALID, "idevid-ca", "the IDevID CA file holds no certificate; give the maker's CA certificate in PEM")
	}
	return cas, nil
}
