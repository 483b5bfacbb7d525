// Package registry is the device registry capability: it owns enrollment (one-time secret
// consumption, CSR policy, issuing through pki), renewal (simplereenroll), revocation,
// assignment to patients, and the one decision every transport asks before a device may act:
// "may this certificate's device act now?" (the certificate is known to the registry, not
// revoked, within its validity at the injected clock, and its device is active).
//
// Both TLS listeners (HTTPS at the handshake and per request, MLLP at the handshake and per
// HL7 message), the command line and every handler call it; each method builds its own
// audit entry, once per action, committed with the write. Decisions read the store through
// package fresh, so a change made on any node (revocation, reassignment) takes effect on
// every node within Config.MaxStaleness (default 2 s), and at once on the node that made it.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/fresh"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/pki"
)

// Defaults of Config.
const (
	DefaultCertValidity    = 90 * 24 * time.Hour
	DefaultReenrollOverlap = 5 * time.Minute
	DefaultAssignmentGrace = 24 * time.Hour
	// DefaultClockSkew is how much earlier than its first assignment a device may date a
	// reading (devices' clocks run behind; a monitor measures while it is being set up).
	DefaultClockSkew = 5 * time.Minute
	DefaultEnrollTTL = 24 * time.Hour
	MaxEnrollTTL     = 30 * 24 * time.Hour
)

// KindOperator is the Principal kind of a person at the command line (who holds the data
// directory and so every authority over the registry).
const KindOperator = "operator"

// Operator returns the principal of a person at the command line.
func Operator(name string) vitalgate.Principal {
	return vitalgate.Principal{Kind: KindOperator, ID: name}
}

// Sealer is what the registry needs from the vault: the patient's blind index within a site
// and sealing of the patient reference a device record holds.
type Sealer interface {
	SitePatientIndex(site, patientID string) []byte
	SealValue(ctx context.Context, site string, patientIndex []byte, purpose string, value []byte) ([]byte, error)
}

// Store is what the registry reads and writes: devices and their certificates, the sites
// they belong to, the models that set their patient binding, and the Patients an assignment
// names (to refuse one of another site).
type Store interface {
	vitalgate.DeviceStore
	// Site returns a site. ENOTFOUND.
	Site(ctx context.Context, id string) (vitalgate.Site, error)
	// Model returns a device model. ENOTFOUND.
	Model(ctx context.Context, id string) (vitalgate.DeviceModel, error)
	// Resource returns a stored resource (a Patient). ENOTFOUND.
	Resource(ctx context.Context, typ, id string) (vitalgate.SealedResource, error)
}

// FailureLimiter throttles failed enrollments per (device id, source address): Allow
// reports whether another attempt may be made now (and if not, how long to wait), Fail
// counts a failure, Succeed clears the pair's count. One source's failures never throttle
// another source.
type FailureLimiter interface {
	Allow(principal, source string) (bool, time.Duration)
	Fail(principal, source string)
	Succeed(principal, source string)
}

// Config configures a Service. DefaultConfig gives the settings' secure defaults; the
// collaborators (Store, CA, Vault, Audit) are required.
type Config struct {
	Store Store
	CA    *pki.CA
	Vault Sealer
	Audit *audit.Log

	// Failures throttles failed enrollments; nil means no throttling.
	Failures FailureLimiter
	Logger   *slog.Logger     // default: discard
	Now      func() time.Time // default time.Now
	Rand     io.Reader        // default crypto/rand.Reader

	// CertValidity is the validity of certificates issued through EST.
	CertValidity time.Duration
	// ReenrollOverlap is how long a certificate replaced by simplereenroll stays usable, so
	// that a device can switch to the new one (0: it is revoked at once).
	ReenrollOverlap time.Duration
	// AssignmentGrace is how long after a device's assignment ended the readings it measured
	// during that assignment (buffered while offline) are still accepted.
	AssignmentGrace time.Duration
	// ClockSkew is how much earlier than the start of an assignment a reading may be dated
	// and still belong to it, when the device had no assignment just before (so that no
	// other patient can be meant): a device clock running behind, or a reading taken while
	// the device was being set up. Never across a reassignment. Default DefaultClockSkew.
	ClockSkew time.Duration
	// MaxStaleness bounds how old the registry facts behind a decision may be on any node: a
	// revocation or reassignment on one node takes effect on every node within it.
	MaxStaleness time.Duration
	// HashParams are the hash algorithm and parameters of enrollment secrets (and of the dummy hash
	// unknown device ids are checked against, so that they cost the same work).
	HashParams auth.HashParams
	// VerifySecret checks a secret against its hash; default auth.VerifySecret.
	VerifySecret func(hash, secret string) (bool, error)
	// Signals receives detection signals (refused enrollments and certificates); nil: off.
	Signals detect.Sink
	// ModelNetworks are, per device model, the networks its devices may connect from
	// (serve --model-networks), checked at every TLS handshake once the certificate names
	// the device: another address is refused. A model without a list is not restricted.
	ModelNetworks guard.ModelNetworks
}

// DefaultConfig returns the default settings (no collaborators).
func DefaultConfig() Config {
	return Config{
		CertValidity:    DefaultCertValidity,
		ReenrollOverlap: DefaultReenrollOverlap,
		AssignmentGrace: DefaultAssignmentGrace,
		ClockSkew:       DefaultClockSkew,
		MaxStaleness:    fresh.DefaultMaxAge,
		HashParams:      auth.DefaultHashParams,
	}
}

// Validate reports the first setting that is missing or unsafe.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "registry."+field, format, args...)
	}
	switch {
	case c.Store == nil || c.CA == nil || c.Vault == nil || c.Audit == nil:
		return vitalgate.Errorf(vitalgate.EINVALID, "registry: store, CA, vault and audit log are required")
	case c.CertValidity < time.Hour || c.CertValidity > 825*24*time.Hour:
		return bad("CertValidity", "certificate validity must be between 1h and 825 days")
	case c.ReenrollOverlap < 0 || c.ReenrollOverlap > 24*time.Hour:
		return bad("ReenrollOverlap", "the re-enrollment overlap must be between 0 and 24h")
	case c.ClockSkew < 0 || c.ClockSkew > time.Hour:
		return bad("ClockSkew", "the clock skew tolerance must be between 0 and 1h")
	case c.AssignmentGrace < 0 || c.AssignmentGrace > 30*24*time.Hour:
		return bad("AssignmentGrace", "the assignment grace must be between 0 and 720h")
	case c.MaxStaleness < 0 || c.MaxStaleness > time.Minute:
		return bad("MaxStaleness", "the staleness bound must be between 0 and 1 minute")
	case c.HashParams.Validate() != nil:
		return bad("HashParams", "%v", c.HashParams.Validate())
	}
	return nil
}

// Service is the device registry. It is safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	rand    io.Reader
	verify  func(hash, secret string) (bool, error)
	dummy   func() (string, error) // argon2id hash of a random secret nobody knows (made once, on first use)
	devices *fresh.Cache[string, vitalgate.Device]
	certs   *fresh.Cache[string, vitalgate.Certificate]
	models  *fresh.Cache[string, vitalgate.DeviceModel]
}

// New returns a Service, or the error of cfg.Validate.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now, rand: cfg.Rand, verify: cfg.VerifySecret}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.verify == nil {
		s.verify = auth.VerifySecret
	}
	s.dummy = sync.OnceValues(func() (string, error) {
		secret, err := auth.NewSecret(s.rand)
		if err != nil {
			return "", err
		}
		return auth.HashSecret(secret, cfg.HashParams, s.rand)
	})
	s.devices = fresh.New[string, vitalgate.Device](cfg.MaxStaleness, s.now)
	s.certs = fresh.New[string, vitalgate.Certificate](cfg.MaxStaleness, s.now)
	s.models = fresh.New[string, vitalgate.DeviceModel](cfg.MaxStaleness, s.now)
	return s, nil
}

// MaxStaleness returns the bound within which a change takes effect on every node.
func (s *Service) MaxStaleness() time.Duration { return s.cfg.MaxStaleness }

// AssignmentGrace returns how long after an assignment ended its readings are accepted.
func (s *Service) AssignmentGrace() time.Duration { return s.cfg.AssignmentGrace }

// clock returns the current time, truncated to what the stores keep.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func checkID(field, what, id string) error {
	if !idPattern.MatchString(id) {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, field, "%s must be 1 to 64 letters, digits, '-' or '.'", what)
	}
	return nil
}

// agent returns the audit agent fields of p.
func agent(e audit.Entry, p vitalgate.Principal) audit.Entry {
	switch p.Kind {
	case KindOperator:
		e.AgentType = audit.AgentOperator
	case KindDetector:
		e.AgentType, e.AgentRole = audit.AgentSystem, "detect"
	case "device", "enrollee":
		e.AgentType, e.AgentRole = audit.AgentDevice, "device"
	case audit.AgentUser:
		e.AgentType, e.AgentRole = audit.AgentUser, string(p.Role)
	default:
		e.AgentType, e.AgentRole = audit.AgentClient, string(p.Role)
	}
	e.AgentID, e.Emergency = p.ID, p.Emergency
	if e.Site == "" && p.Site != vitalgate.AllSites {
		e.Site = p.Site
	}
	return e
}

// entry encodes an audit entry to commit with a write.
func (s *Service) entry(ctx context.Context, p vitalgate.Principal, e audit.Entry) []byte {
	return s.cfg.Audit.Encode(ctx, agent(e, p))
}

// refused appends the audit entry of a refused action (best effort: the refusal stands even
// if the entry cannot be written, and the failure is logged).
func (s *Service) refused(ctx context.Context, p vitalgate.Principal, e audit.Entry, err error) {
	e = agent(e, p)
	e.Outcome, e.OutcomeDesc = audit.OutcomeMinorFailure, vitalgate.ErrorMessage(err)
	if aerr := s.cfg.Audit.Append(ctx, e); aerr != nil {
		s.log.Error("audit append failed", "action", e.Subtype, "error", aerr.Error())
	}
}

// seal returns the blind index (within site) and sealed reference of patientID for device
// deviceID.
func (s *Service) seal(ctx context.Context, site, deviceID, patientID string) ([]byte, []byte, error) {
	pidx := s.cfg.Vault.SitePatientIndex(site, patientID)
	sealed, err := s.cfg.Vault.SealValue(ctx, site, pidx, "device-patient:"+deviceID, []byte(patientID))
	if err != nil {
		return nil, nil, err
	}
	return pidx, sealed, nil
}

// inSite checks that p may act on a record of site: an operator (and the detector, which
// only quarantines) always, anyone else only within its own site. The refusal reads as if
// the record did not exist (ENOTFOUND, what), so that a principal of one site cannot probe
// another's; the audit entry tells the truth.
func inSite(p vitalgate.Principal, site, what string) error {
	if p.Kind == KindOperator || p.Kind == KindDetector || vitalgate.InSite(p.Site, site) {
		return nil
	}
	return &vitalgate.Error{Code: vitalgate.ENOTFOUND, Message: what,
		Err: fmt.Errorf("site: %q acts within site %q, the record is of site %q", p.ID, p.Site, site)}
}

// patientSite refuses an assignment to a Patient of another site: a Patient stored under
// patientID must belong to site (a patient id that no stored Patient has is the site's).
func (s *Service) patientSite(ctx context.Context, site, patientID string) error {
	r, err := s.cfg.Store.Resource(ctx, "Patient", patientID)
	switch vitalgate.ErrorCode(err) {
	case vitalgate.ENOTFOUND:
		return nil
	case "":
	default:
		return err
	}
	if r.Site != site {
		return vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, "patient",
			"Patient/%s belongs to another site than the device; a device is assigned only to patients of its own site", patientID)
	}
	return nil
}

// Add registers device id of the default site (AddToSite).
func (s *Service) Add(ctx context.Context, p vitalgate.Principal, id, patientID, model string, expires time.Duration) (vitalgate.Device, string, error) {
	return s.AddToSite(ctx, p, vitalgate.DefaultSite, id, patientID, model, expires)
}

// AddToSite registers device id of site assigned to patientID (none for a device whose
// model binds identified patients) and returns it with its one-time enrollment secret,
// valid for expires (DefaultEnrollTTL when zero). A refusal for another site's patient is
// audited. Errors: EINVALID for a bad id, patient id or expiry, ENOTFOUND for an unknown
// site, EFORBIDDEN for a Patient of another site, ECONFLICT if the device exists.
func (s *Service) AddToSite(ctx context.Context, p vitalgate.Principal, site, id, patientID, model string, expires time.Duration) (vitalgate.Device, string, error) {
	if expires == 0 {
		expires = DefaultEnrollTTL
	}
	if err := checkID("id", "the device id", id); err != nil {
		return vitalgate.Device{}, "", err
	}
	if err := s.checkSite(ctx, p, site); err != nil {
		if vitalgate.ErrorCode(err) != vitalgate.EINVALID {
			s.refused(ctx, p, audit.Entry{Action: audit.ActionCreate, Type: "admin", Subtype: "device-add",
				Resources: []string{"Device/" + id}, Site: site}, err)
		}
		return vitalgate.Device{}, "", err
	}
	binding, err := s.binding(ctx, site, model)
	if err != nil {
		return vitalgate.Device{}, "", err
	}
	if patientID == "" && binding == vitalgate.BindingIdentified {
		return s.add(ctx, p, site, id, "", model, expires)
	}
	if err := checkID("patient", "the patient id", patientID); err != nil {
		return vitalgate.Device{}, "", err
	}
	if err := s.patientSite(ctx, site, patientID); err != nil {
		s.refused(ctx, p, audit.Entry{Action: audit.ActionCreate, Type: "admin", Subtype: "device-add",
			Resources: []string{"Device/" + id}, Site: site}, err)
		return vitalgate.Device{}, "", err
	}
	return s.add(ctx, p, site, id, patientID, model, expires)
}

// checkSite checks that site exists and p may register a device there.
func (s *Service) checkSite(ctx context.Context, p vitalgate.Principal, site string) error {
	if err := vitalgate.CheckSiteID(site); err != nil {
		return err
	}
	if err := inSite(p, site, "no such site"); err != nil {
		return err
	}
	st, err := s.cfg.Store.Site(ctx, site)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return vitalgate.FieldErrorf(vitalgate.ENOTFOUND, "site", "no site %q exists; add it first (vitalgate site add)", site)
		}
		return err
	}
	return vitalgate.CheckSiteOpen(st)
}

func (s *Service) add(ctx context.Context, p vitalgate.Principal, site, id, patientID, model string, expires time.Duration) (vitalgate.Device, string, error) {
	if expires < 0 || expires > MaxEnrollTTL {
		return vitalgate.Device{}, "", vitalgate.FieldErrorf(vitalgate.EINVALID, "expires", "the enrollment secret's life must be between 1s and 720h")
	}
	secret, err := auth.NewSecret(s.rand)
	if err != nil {
		return vitalgate.Device{}, "", err
	}
	hash, err := auth.HashSecret(secret, s.cfg.HashParams, s.rand)
	if err != nil {
		return vitalgate.Device{}, "", err
	}
	var pidx, sealed []byte
	if patientID != "" {
		if pidx, sealed, err = s.seal(ctx, site, id, patientID); err != nil {
			return vitalgate.Device{}, "", err
		}
	}
	now := s.clock()
	d := vitalgate.Device{ID: id, Site: site, Model: model, Status: vitalgate.DeviceActive,
		PatientIndex: pidx, PatientSealed: sealed, CreatedAt: now, UpdatedAt: now,
		EnrollSecretHash: hash, EnrollExpiresAt: now.Add(expires)}
	e := s.entry(ctx, p, audit.Entry{Action: audit.ActionCreate, Type: "admin", Subtype: "device-add",
		Outcome: audit.OutcomeSuccess, PatientIndex: audit.PatientIndex(pidx), Resources: []string{"Device/" + id}, Site: site})
	if err := s.cfg.Store.CreateDevice(ctx, d, e); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return vitalgate.Device{}, "", vitalgate.Errorf(vitalgate.ECONFLICT, "device %q is already registered", id)
		}
		return vitalgate.Device{}, "", err
	}
	s.devices.Forget(id)
	return d, secret, nil
}

// Devices lists the registered devices ordered by id.
func (s *Service) Devices(ctx context.Context) ([]vitalgate.Device, error) {
	return s.cfg.Store.Devices(ctx)
}

// Assignments returns up to limit of the device's assignments, newest first.
func (s *Service) Assignments(ctx context.Context, deviceID string, limit int) ([]vitalgate.Assignment, error) {
	return s.cfg.Store.Assignments(ctx, deviceID, limit)
}

// Revoke revokes device deviceID and every one of its certificates, at once on this node and
// within MaxStaleness on every other. A person of the web console must be an admin of the
// device's site who has just re-authenticated (p.Reauthenticated): revoking is a dangerous
// act. Errors: EFORBIDDEN, ENOTFOUND.
func (s *Service) Revoke(ctx context.Context, p vitalgate.Principal, deviceID string) error {
	if p.Kind == audit.AgentUser {
		switch {
		case p.Role != vitalgate.RoleAdmin:
			return vitalgate.Errorf(vitalgate.EFORBIDDEN, "not permitted")
		case !p.Reauthenticated:
			return vitalgate.Errorf(vitalgate.EFORBIDDEN, "revoking a device needs your password and authenticator code again")
		}
		if err := access.RequireScope(p, "Device", access.OpUpdate); err != nil {
			return err
		}
	} else if err := s.mayAdminister(p, "Device", access.OpUpdate); err != nil {
		return err
	}
	d, err := s.cfg.Store.Device(ctx, deviceID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered", deviceID)
	} else if err != nil {
		return err
	}
	if err := inSite(p, d.Site, fmt.Sprintf("no device %q is registered", deviceID)); err != nil {
		s.refused(ctx, p, audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "device-revoke",
			Resources: []string{"Device/" + deviceID}, Site: d.Site}, err)
		return err
	}
	e := s.entry(ctx, p, audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "device-revoke",
		Outcome: audit.OutcomeSuccess, Resources: []string{"Device/" + deviceID}, Site: d.Site})
	err = s.cfg.Store.RevokeDevice(ctx, deviceID, s.clock(), e)
	s.devices.Forget(deviceID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered", deviceID)
	}
	return err
}

// mayAdminister checks that p may change devices: an operator always, an API client with
// the SMART scope for op on res.
func (s *Service) mayAdminister(p vitalgate.Principal, res string, op rune) error {
	if p.Kind == KindOperator {
		return nil
	}
	if p.Kind != "client" {
		return vitalgate.Errorf(vitalgate.EFORBIDDEN, "not permitted")
	}
	return access.RequireScope(p, res, op)
}

// Assign reassigns device deviceID to patient patientID (a Patient id, "Patient/" prefix
// allowed) from now on: the current assignment ends now and is kept in the history, so
// readings measured before now still belong to the previous patient. Returns the updated
// device. Errors: EFORBIDDEN without the Device update scope, EINVALID for a bad patient id,
// ENOTFOUND for an unknown device, ECONFLICT when the device was reassigned in the same
// instant.
func (s *Service) Assign(ctx context.Context, p vitalgate.Principal, deviceID, patientID string) (vitalgate.Device, error) {
	if err := s.mayAdminister(p, "Device", access.OpUpdate); err != nil {
		return vitalgate.Device{}, err
	}
	if err := checkID("id", "the device id", deviceID); err != nil {
		return vitalgate.Device{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered", deviceID)
	}
	if len(patientID) > len("Patient/") && patientID[:len("Patient/")] == "Patient/" {
		patientID = patientID[len("Patient/"):]
	}
	if err := checkID("patient", "patient", patientID); err != nil {
		return vitalgate.Device{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "patient", "patient must be a Patient id")
	}
	d, err := s.cfg.Store.Device(ctx, deviceID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Device{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered", deviceID)
	} else if err != nil {
		return vitalgate.Device{}, err
	}
	refused := audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "assign-device",
		Resources: []string{"Device/" + deviceID}, Site: d.Site}
	if err := inSite(p, d.Site, fmt.Sprintf("no device %q is registered", deviceID)); err != nil {
		s.refused(ctx, p, refused, err)
		return vitalgate.Device{}, err
	}
	if err := s.patientSite(ctx, d.Site, patientID); err != nil {
		s.refused(ctx, p, refused, err)
		return vitalgate.Device{}, err
	}
	pidx, sealed, err := s.seal(ctx, d.Site, deviceID, patientID)
	if err != nil {
		return vitalgate.Device{}, err
	}
	e := s.entry(ctx, p, audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "assign-device",
		Outcome: audit.OutcomeSuccess, PatientIndex: audit.PatientIndex(pidx), Resources: []string{"Device/" + deviceID}, Site: d.Site})
	err = s.cfg.Store.AssignPatient(ctx, deviceID, pidx, sealed, s.clock(), e)
	s.devices.Forget(deviceID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Device{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered", deviceID)
	} else if err != nil {
		return vitalgate.Device{}, err
	}
	return s.cfg.Store.Device(ctx, deviceID)
}

// device returns the device with id through the bounded-staleness cache.
func (s *Service) device(ctx context.Context, id string) (vitalgate.Device, error) {
	return s.devices.Get(ctx, id, func(ctx context.Context) (vitalgate.Device, error) {
		return s.cfg.Store.Device(ctx, id)
	})
}

// Sender returns the device deviceID if it may send data now: registered, active and assigned
// to a patient. Its facts are at most MaxStaleness old. Errors: EFORBIDDEN naming the reason.
func (s *Service) Sender(ctx context.Context, deviceID string) (vitalgate.Device, error) {
	d, err := s.device(ctx, deviceID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return d, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q is not registered", deviceID)
	} else if err != nil {
		return d, err
	}
	if err := active(d); err != nil {
		return d, err
	}
	b, err := s.binding(ctx, d.Site, d.Model)
	if err != nil {
		return d, err
	}
	if len(d.PatientIndex) == 0 && b != vitalgate.BindingIdentified {
		return d, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q is not assigned to a patient", deviceID)
	}
	return d, nil
}

// Binding returns the patient-binding policy of the device's model for the device's site
// (the site's own setting, or else the model's; BindingAssigned for a model that is not
// registered), from facts at most MaxStaleness old.
func (s *Service) Binding(ctx context.Context, d vitalgate.Device) (vitalgate.Binding, error) {
	return s.binding(ctx, d.Site, d.Model)
}

func (s *Service) binding(ctx context.Context, site, model string) (vitalgate.Binding, error) {
	if model == "" {
		return vitalgate.BindingAssigned, nil
	}
	m, err := s.models.Get(ctx, model, func(ctx context.Context) (vitalgate.DeviceModel, error) {
		return s.cfg.Store.Model(ctx, model)
	})
	switch vitalgate.ErrorCode(err) {
	case "":
		return m.BindingAt(site), nil
	case vitalgate.ENOTFOUND:
		return vitalgate.BindingAssigned, nil
	}
	return "", err
}

// active is the one device-is-active rule: a revoked or quarantined device may not act.
func active(d vitalgate.Device) error {
	switch d.Status {
	case vitalgate.DeviceActive:
		return nil
	case vitalgate.DeviceQuarantined:
		return vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q is quarantined; an operator releases it (vitalgate device release)", d.ID)
	}
	return vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q has been revoked", d.ID)
}

// PatientAt returns the device's assignment that covers t (the time a reading was measured):
// the current one, or one that ended no longer than AssignmentGrace ago. Errors: EFORBIDDEN
// when no assignment covers t or it ended longer ago than the grace.
func (s *Service) PatientAt(ctx context.Context, deviceID string, t time.Time) (vitalgate.Assignment, error) {
	a, err := s.cfg.Store.AssignmentAt(ctx, deviceID, t)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND && s.cfg.ClockSkew > 0 {
		a, err = s.leadingAssignment(ctx, deviceID, t)
	}
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return a, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q was not assigned to a patient at %s", deviceID, t.UTC().Format(time.RFC3339))
	} else if err != nil {
		return a, err
	}
	if !a.Current() && s.clock().Sub(a.To) > s.cfg.AssignmentGrace {
		return vitalgate.Assignment{}, vitalgate.Errorf(vitalgate.EFORBIDDEN,
			"device %q was reassigned more than %s after this reading was measured; readings from before a reassignment are accepted for %s",
			deviceID, s.cfg.AssignmentGrace, s.cfg.AssignmentGrace)
	}
	return a, nil
}

// leadingAssignment returns the assignment that starts within ClockSkew after t when the
// device had none just before it (so the reading cannot belong to another patient).
// ENOTFOUND otherwise. Two indexed lookups, whatever the history.
func (s *Service) leadingAssignment(ctx context.Context, deviceID string, t time.Time) (vitalgate.Assignment, error) {
	a, err := s.cfg.Store.AssignmentAt(ctx, deviceID, t.Add(s.cfg.ClockSkew))
	if err != nil {
		return vitalgate.Assignment{}, err
	}
	if !a.From.After(t) {
		return vitalgate.Assignment{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "no assignment")
	}
	_, err = s.cfg.Store.AssignmentAt(ctx, deviceID, a.From.Add(-time.Microsecond))
	switch vitalgate.ErrorCode(err) {
	case vitalgate.ENOTFOUND:
		return a, nil // nothing before it: the reading is the new assignment's
	case "":
		return vitalgate.Assignment{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "another assignment before")
	}
	return vitalgate.Assignment{}, err
}

// Authorize decides whether the holder of cert (a client certificate the TLS layer has
// verified against the CA) may act now, and returns its device id: the certificate must be
// a device certificate the registry issued, not revoked, within its validity at the injected
// clock, and its device active. The registry facts it uses are at most MaxStaleness old.
// Errors: EUNAUTHORIZED naming the reason; EUNAVAILABLE when the store cannot answer.
func (s *Service) Authorize(ctx context.Context, cert *x509.Certificate) (string, error) {
	id, err := s.authorize(ctx, cert, false, false)
	s.certSignal(ctx, cert, err)
	return id, err
}

// AuthorizeUpdates is Authorize for the update repository (remediation): it also lets in a
// quarantined device, unless an operator blocked its updates (BlockUpdates).
func (s *Service) AuthorizeUpdates(ctx context.Context, cert *x509.Certificate) (string, error) {
	id, err := s.authorize(ctx, cert, false, true)
	s.certSignal(ctx, cert, err)
	return id, err
}

// AuthorizeHandshake decides at a TLS handshake, reading the registry afresh (once per
// connection; every later request or message uses Authorize or AuthorizeUpdates): it lets in
// what AuthorizeUpdates does, so that a quarantined device can reach the update repository
// and nothing else.
func (s *Service) AuthorizeHandshake(ctx context.Context, cert *x509.Certificate) (string, error) {
	id, err := s.authorize(ctx, cert, true, true)
	s.certSignal(ctx, cert, err)
	if err == nil && s.cfg.Signals != nil {
		if d, derr := s.device(ctx, id); derr == nil { // read afresh just now
			ri := vitalgate.RequestInfoFrom(ctx)
			s.cfg.Signals.Emit(detect.Signal{Kind: detect.KindHandshake, At: s.now(), Source: ri.RemoteIP, Device: id,
				Site: d.Site, Model: d.Model, Fingerprint: ri.TLSFingerprint})
		}
	}
	return id, err
}

func (s *Service) authorize(ctx context.Context, cert *x509.Certificate, afresh, updates bool) (string, error) {
	id, ok := pki.DeviceIDFromCert(cert)
	if !ok || !s.IssuedHere(cert) { // an IDevID authenticates enrollment only
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "the client certificate is not a device certificate of this server")
	}
	serial := pki.SerialHex(cert)
	if afresh {
		s.certs.Forget(serial)
		s.devices.Forget(id)
	}
	c, err := s.certs.Get(ctx, serial, func(ctx context.Context) (vitalgate.Certificate, error) {
		return s.cfg.Store.Certificate(ctx, serial)
	})
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND || (err == nil && c.DeviceID != id) {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "client certificate is not known to this server")
	} else if err != nil {
		return "", err
	}
	now := s.now()
	switch {
	case c.RevokedBy(now):
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "client certificate has been revoked")
	case now.Before(cert.NotBefore) || now.After(cert.NotAfter) ||
		(!c.NotBefore.IsZero() && now.Before(c.NotBefore)) || (!c.NotAfter.IsZero() && now.After(c.NotAfter)):
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "client certificate is expired or not yet valid; re-enroll the device")
	}
	d, err := s.device(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "client certificate is not known to this server")
	} else if err != nil {
		return "", err
	}
	if active(d) != nil {
		if d.Status == vitalgate.DeviceQuarantined {
			if updates && !s.updatesBlocked(ctx, id) {
				return id, nil // remediation: the update repository only
			}
			return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "device is quarantined")
		}
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "device has been revoked")
	}
	if afresh {
		if nets, ok := s.cfg.ModelNetworks[d.Model]; ok && !nets.Allows(vitalgate.RequestInfoFrom(ctx).RemoteIP) {
			return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "device of model %s connects from an address outside its model's networks", d.Model)
		}
	}
	return id, nil
}

// badEnrollment is the one answer to every wrong enrollment credential, so that a caller
// cannot tell an unknown device from a wrong, used or expired secret.
var badEnrollment = vitalgate.Errorf(vitalgate.EUNAUTHORIZED,
	"enrollment credentials are not valid (unknown device, wrong, used or expired secret)")

// Enroll issues device p.ID's first certificate in exchange for its one-time enrollment
// secret (EST simpleenroll); csr is the base64 PKCS#10 request body. Failures are throttled
// per (device id, source address) and cost the same work for unknown ids as for known ones.
// Errors: EUNAUTHORIZED (one answer for every wrong credential), ETHROTTLED after too many
// failures from this source, the CSR errors of pki.ParseCSR and pki.CheckCSR.
func (s *Service) Enroll(ctx context.Context, p vitalgate.Principal, secret string, csr []byte) (*x509.Certificate, error) {
	audited := audit.Entry{Action: audit.ActionExecute, Type: "enroll", Subtype: "simpleenroll", Resources: nil}
	if s.cfg.Failures != nil {
		if ok, wait := s.cfg.Failures.Allow(p.ID, p.RemoteIP); !ok {
			err := vitalgate.Errorf(vitalgate.ETHROTTLED, "too many failed enrollments from this address; try again in %s", wait.Round(time.Second))
			s.logEnrollRefusal(ctx, p, err.Error())
			s.refused(ctx, p, audited, err)
			return nil, err
		}
	}
	fail := func(err error) (*x509.Certificate, error) {
		if s.cfg.Failures != nil {
			s.cfg.Failures.Fail(p.ID, p.RemoteIP)
		}
		s.refused(ctx, p, audited, err)
		return nil, err
	}
	d, err := s.cfg.Store.Device(ctx, p.ID)
	known := err == nil
	if err != nil && vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		return nil, err
	}
	now := s.clock()
	hash := d.EnrollSecretHash
	if !known || hash == "" {
		// The same argon2id work as for a known device, and it never matches.
		if hash, err = s.dummy(); err != nil {
			return nil, err
		}
	}
	ok, verr := s.verify(hash, secret)
	if !known || d.EnrollSecretHash == "" || verr != nil || !ok || active(d) != nil || !now.Before(d.EnrollExpiresAt) {
		s.logEnrollRefusal(ctx, p, enrollRefusal(known, d, verr, ok, now))
		return fail(badEnrollment)
	}
	cert, err := s.issue(csr, d.ID, now)
	if err != nil {
		s.logEnrollRefusal(ctx, p, "certificate request refused: "+vitalgate.ErrorMessage(err))
		return fail(err)
	}
	rec := certRecord(cert, d.ID, now)
	e := s.entry(ctx, p, audit.Entry{Action: audit.ActionCreate, Type: "enroll", Subtype: "simpleenroll",
		Outcome: audit.OutcomeSuccess, Resources: []string{"Certificate/" + rec.Serial}, Site: d.Site})
	if err := s.cfg.Store.ConsumeEnrollSecret(ctx, d.ID, d.EnrollSecretHash, rec, e); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			s.logEnrollRefusal(ctx, p, "the enrollment secret was used meanwhile (a concurrent enrollment)")
			return fail(badEnrollment)
		}
		return nil, err
	}
	if s.cfg.Failures != nil {
		s.cfg.Failures.Succeed(p.ID, p.RemoteIP)
	}
	s.log.Info("device enrolled", "device", d.ID, "serial", rec.Serial)
	return cert, nil
}

// Reenroll renews the certificate current of an authenticated device (EST simplereenroll);
// csr is the base64 PKCS#10 request body. The current certificate stays usable for
// ReenrollOverlap and is revoked then (at once when the overlap is 0). Errors: those of
// Authorize, the CSR errors of pki.ParseCSR and pki.CheckCSR.
func (s *Service) Reenroll(ctx context.Context, current *x509.Certificate, csr []byte) (*x509.Certificate, error) {
	id, err := s.AuthorizeHandshake(ctx, current)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	cert, err := s.issue(csr, id, now)
	if err != nil {
		return nil, err
	}
	rec := certRecord(cert, id, now)
	old := pki.SerialHex(current)
	p := vitalgate.Principal{Kind: "device", ID: id, Role: vitalgate.RoleDevice}
	if d, err := s.device(ctx, id); err == nil {
		p.Site = d.Site
	}
	e := s.entry(ctx, p, audit.Entry{Action: audit.ActionCreate, Type: "enroll", Subtype: "simplereenroll",
		Outcome: audit.OutcomeSuccess, Resources: []string{"Certificate/" + rec.Serial, "Certificate/" + old}})
	if err := s.cfg.Store.RenewCertificate(ctx, rec, old, now.Add(s.cfg.ReenrollOverlap), e); err != nil {
		return nil, err
	}
	s.certs.Forget(old)
	s.log.Info("device re-enrolled", "device", id, "serial", rec.Serial, "replaced", old)
	return cert, nil
}

// issue applies the CSR policy and signs a certificate for deviceID.
func (s *Service) issue(body []byte, deviceID string, now time.Time) (*x509.Certificate, error) {
	csr, err := pki.ParseCSR(body)
	if err != nil {
		return nil, err
	}
	return s.cfg.CA.IssueDevice(csr, deviceID, now, s.cfg.CertValidity, s.rand)
}

func certRecord(c *x509.Certificate, deviceID string, now time.Time) vitalgate.Certificate {
	return vitalgate.Certificate{
		Serial: pki.SerialHex(c), DeviceID: deviceID,
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), IssuedAt: now.UTC(),
	}
}

// String describes the configuration (for the server's start-up log).
func (s *Service) String() string {
	return fmt.Sprintf("registry (staleness bound %s, re-enrollment overlap %s, assignment grace %s)",
		s.cfg.MaxStaleness, s.cfg.ReenrollOverlap, s.cfg.AssignmentGrace)
}
