// Package access authorizes and runs reads and searches of patient data, once for every
// transport. It applies SMART scopes, the client's role and care team, and emergency
// ("break glass") access, above storage, so that every store behaves the same.
package access

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"slices"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/vault"
)

// Store is what reads need from storage.
type Store interface {
	Resource(ctx context.Context, typ, id string) (vitalgate.SealedResource, error)
	Resources(ctx context.Context, f vitalgate.ResourceFilter, fn func(vitalgate.SealedResource) error) error
	Device(ctx context.Context, id string) (vitalgate.Device, error)
	Client(ctx context.Context, id string) (vitalgate.Client, error)
	// User returns a console user (the care team of a clinician signed in to the console).
	User(ctx context.Context, id string) (vitalgate.User, error)
	Site(ctx context.Context, id string) (vitalgate.Site, error)
}

// AgentType is the audit agent type of principal p: a person signed in to the console
// (audit.AgentUser), else an API client.
func AgentType(p vitalgate.Principal) string {
	if p.Kind == audit.AgentUser {
		return audit.AgentUser
	}
	return audit.AgentClient
}

// entrySite is the site of an audit entry about what a principal of site did: its site, or
// none for a deployment-wide principal.
func entrySite(site string) string {
	if site == vitalgate.AllSites {
		return ""
	}
	return site
}

// errNoSite refuses patient data to a principal that acts within no one site (a
// deployment-wide auditor holds no patient scopes either; this is the second lock).
var errNoSite = vitalgate.Errorf(vitalgate.EFORBIDDEN, "this client acts within no site: patient data is read by clients of its site")

// notFound is the answer to a read of a record of another site: exactly the answer for a
// record that does not exist, so that a client of one site cannot probe another's. The audit
// entry tells the truth (errOtherSite).
func notFound(typ, id string) error {
	return vitalgate.Errorf(vitalgate.ENOTFOUND, "%s/%s is not known", typ, id)
}

// errOtherSite is what the audit entry of a refused cross-site read says.
var errOtherSite = vitalgate.Errorf(vitalgate.EFORBIDDEN, "cross-site: the record belongs to another site")

// Service runs authorized reads.
type Service struct {
	Store Store
	Vault *vault.Vault
	Now   func() time.Time
	// Audit, when set, records every read and search, allowed or refused, before any data
	// is returned: a read that cannot be audited fails.
	Audit *audit.Log
	// Versions, when set, gives the software version each device reported installed
	// (package rollout), shown as Device.version.
	Versions interface {
		InstalledVersion(ctx context.Context, deviceID string) (string, error)
	}
	// Signals receives a detection signal (scope-escalation) for every act refused to a
	// client's role; nil: off.
	Signals detect.Sink
}

// record appends the audit entry of a read or search.
func (s *Service) record(ctx context.Context, p vitalgate.Principal, subtype, typ string, pidx []byte, ids []string, n int, err error) error {
	return s.recordIn(ctx, entrySite(p.Site), p, subtype, typ, pidx, ids, n, err)
}

// recordIn is record with the entry's site: the site of the record concerned, which for a
// refused cross-site read is not the principal's (the site whose data was asked for sees
// the attempt).
func (s *Service) recordIn(ctx context.Context, site string, p vitalgate.Principal, subtype, typ string, pidx []byte, ids []string, n int, err error) error {
	if s.Audit == nil {
		return nil
	}
	e := audit.Entry{Action: audit.ActionRead, Type: "rest", Subtype: subtype, AgentType: AgentType(p),
		AgentID: p.ID, AgentRole: string(p.Role), Emergency: p.Emergency, Count: n, Site: site}
	if len(pidx) > 0 {
		e.PatientIndex = audit.PatientIndex(pidx)
	}
	for _, id := range ids {
		e.Resources = append(e.Resources, typ+"/"+id)
	}
	if subtype == "search" && len(ids) == 0 {
		e.Resources = []string{typ}
	}
	if p.Emergency {
		e.OutcomeDesc = "emergency access: " + p.EmergencyReason
	}
	if err != nil {
		e.Outcome = audit.OutcomeMinorFailure
		e.OutcomeDesc = vitalgate.ErrorCode(err) + ": " + vitalgate.ErrorMessage(err)
	}
	if aerr := s.Audit.Append(ctx, e); aerr != nil {
		return vitalgate.Unavailable(aerr, "the access could not be audited; try again")
	}
	return nil
}

// Scope operations.
const (
	OpRead   = 'r'
	OpSearch = 's'
	OpCreate = 'c'
	OpUpdate = 'u'
)

// RequireScope checks that the principal's token grants op on resource type res.
func RequireScope(p vitalgate.Principal, res string, op rune) error {
	if !auth.ScopesAllow(p.Scopes, res, op) {
		return vitalgate.Errorf(vitalgate.EFORBIDDEN, "the access token's scopes do not allow %s of %s", opName(op), res)
	}
	return nil
}

func opName(op rune) string {
	switch op {
	case OpRead:
		return "read"
	case OpSearch:
		return "search"
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	}
	return "this operation"
}

// CheckPatient decides whether p may see the patient with blind index pidx: clinicians only
// see their care team, except under emergency access; system clients see every patient.
func (s *Service) CheckPatient(ctx context.Context, p vitalgate.Principal, pidx []byte) error {
	if p.Role != vitalgate.RoleClinician || p.Emergency {
		return nil
	}
	if p.Kind == audit.AgentUser {
		u, err := s.Store.User(ctx, p.ID)
		if err != nil && vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
			return err
		}
		if err != nil || u.Disabled {
			return vitalgate.Errorf(vitalgate.EFORBIDDEN, "user is disabled or no longer registered")
		}
		if slices.ContainsFunc(u.PatientIndexes, func(b []byte) bool { return bytes.Equal(b, pidx) }) {
			return nil
		}
		return vitalgate.Errorf(vitalgate.EFORBIDDEN, "this patient is not in your care team; use emergency access if you must")
	}
	c, err := s.Store.Client(ctx, p.ID)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return vitalgate.Errorf(vitalgate.EFORBIDDEN, "client is no longer registered")
		}
		return err
	}
	if c.Disabled {
		return vitalgate.Errorf(vitalgate.EFORBIDDEN, "client is disabled")
	}
	if slices.ContainsFunc(c.PatientIndexes, func(b []byte) bool { return bytes.Equal(b, pidx) }) {
		return nil
	}
	return vitalgate.Errorf(vitalgate.EFORBIDDEN, "this patient is not in your care team; use emergency access if you must")
}

// Read returns a stored resource, decrypted, after checking scope and patient access.
// Errors: EFORBIDDEN, ENOTFOUND.
func (s *Service) Read(ctx context.Context, p vitalgate.Principal, typ, id string) ([]byte, vitalgate.SealedResource, error) {
	if err := RequireScope(p, typ, OpRead); err != nil {
		return nil, vitalgate.SealedResource{}, s.fail(ctx, p, "read", typ, nil, id, err)
	}
	if !vitalgate.InSite(p.Site, p.Site) {
		return nil, vitalgate.SealedResource{}, s.fail(ctx, p, "read", typ, nil, id, errNoSite)
	}
	r, err := s.Store.Resource(ctx, typ, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return nil, vitalgate.SealedResource{}, s.fail(ctx, p, "read", typ, nil, id, notFound(typ, id))
	} else if err != nil {
		return nil, r, s.fail(ctx, p, "read", typ, nil, id, err)
	}
	if !vitalgate.InSite(p.Site, r.Site) {
		return nil, vitalgate.SealedResource{}, s.refuseSite(ctx, p, r.Site, typ, r.PatientIndex, id)
	}
	if err := s.CheckPatient(ctx, p, r.PatientIndex); err != nil {
		return nil, r, s.fail(ctx, p, "read", typ, r.PatientIndex, id, err)
	}
	body, err := s.Vault.Open(ctx, r)
	if err != nil {
		return nil, r, err
	}
	if err := s.record(ctx, p, "read", typ, r.PatientIndex, []string{id}, 1, nil); err != nil {
		return nil, r, err
	}
	return body, r, nil
}

// ReadDevice returns the FHIR Device of a registered device (its status and, when it is
// assigned, its patient), after checking the Device read scope and that p may see that
// patient. Like every read it is recorded, allowed or refused, before anything is returned:
// a read that cannot be audited fails. Errors: EFORBIDDEN, ENOTFOUND, EUNAVAILABLE (not
// audited).
func (s *Service) ReadDevice(ctx context.Context, p vitalgate.Principal, id string) ([]byte, error) {
	if err := RequireScope(p, "Device", OpRead); err != nil {
		return nil, s.fail(ctx, p, "read", "Device", nil, id, err)
	}
	if !vitalgate.InSite(p.Site, p.Site) {
		return nil, s.fail(ctx, p, "read", "Device", nil, id, errNoSite)
	}
	d, err := s.Store.Device(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return nil, s.fail(ctx, p, "read", "Device", nil, id, notFound("Device", id))
	} else if err != nil {
		return nil, s.fail(ctx, p, "read", "Device", nil, id, err)
	}
	if !vitalgate.InSite(p.Site, d.Site) {
		return nil, s.refuseSite(ctx, p, d.Site, "Device", d.PatientIndex, id)
	}
	if err := s.CheckPatient(ctx, p, d.PatientIndex); err != nil {
		return nil, s.fail(ctx, p, "read", "Device", d.PatientIndex, id, err)
	}
	body, err := s.DeviceResource(ctx, d)
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, p, "read", "Device", d.PatientIndex, []string{d.ID}, 1, nil); err != nil {
		return nil, err
	}
	return body, nil
}

// DeviceResource builds the FHIR Device for a registered device, without an access check
// or an audit entry: for the caller that has just changed the device and audited that.
func (s *Service) DeviceResource(ctx context.Context, d vitalgate.Device) ([]byte, error) {
	fd := fhir.Device{ID: d.ID, ModelNumber: d.Model, Status: "active",
		Identifier: []fhir.Identifier{{System: "urn:vitalgate:device", Value: d.ID}}}
	if d.Status != vitalgate.DeviceActive {
		fd.Status = "inactive"
	}
	if len(d.PatientSealed) > 0 {
		pid, err := s.Vault.OpenValue(ctx, d.PatientIndex, "device-patient:"+d.ID, d.PatientSealed)
		if err != nil {
			return nil, err
		}
		fd.Patient = &fhir.Reference{Reference: "Patient/" + string(pid)}
	}
	if s.Versions != nil {
		v, err := s.Versions.InstalledVersion(ctx, d.ID)
		if err != nil {
			return nil, err
		}
		if v != "" {
			fd.Version = []fhir.DeviceVersion{{Value: v}}
		}
	}
	fd.SetMeta(d.ID, "1", d.UpdatedAt)
	return fd.Marshal()
}

// refuseSite records a refused read of a record of another site (in the audit of that site,
// with the truth) and returns what a missing record would get.
func (s *Service) refuseSite(ctx context.Context, p vitalgate.Principal, site, typ string, pidx []byte, id string) error {
	if aerr := s.recordIn(ctx, site, p, "read", typ, pidx, []string{id}, 0, errOtherSite); aerr != nil {
		return aerr
	}
	return notFound(typ, id)
}

// fail records a refused read or search and returns its error.
func (s *Service) fail(ctx context.Context, p vitalgate.Principal, subtype, typ string, pidx []byte, id string, err error) error {
	var ids []string
	if id != "" {
		ids = []string{id}
	}
	if aerr := s.record(ctx, p, subtype, typ, pidx, ids, 0, err); aerr != nil {
		return aerr
	}
	return err
}

// Query is a search over one patient's resources of one type.
type Query struct {
	// Site is set by Search to the principal's site (a cursor is bound to it); callers
	// leave it empty.
	Site      string
	Type      string
	PatientID string
	Token     string // "system|code", bare code, or identifier "system|value"; optional
	From, To  time.Time
	Count     int
	Desc      bool
	Cursor    string
	// ByPatientToken searches every patient by Token alone (Patient?identifier=).
	ByPatientToken bool
	// Category, when set, keeps only the resources of this category (an Observation
	// category: fhir.CategoryLaboratory), with Token if given: one blind index of both
	// (fhir.CategoryToken) that ingest writes for every laboratory result.
	Category string
}

// Page is one page of search results.
type Page struct {
	Resources  [][]byte
	PatientIdx []byte
	Next       string // opaque cursor for the next page, empty on the last
}

// Search runs an authorized search. Errors: EFORBIDDEN, EINVALID (bad cursor).
func (s *Service) Search(ctx context.Context, p vitalgate.Principal, q Query) (Page, error) {
	q.Site = p.Site
	page, ids, err := s.search(ctx, p, q)
	if err != nil {
		return Page{}, s.fail(ctx, p, "search", q.Type, page.PatientIdx, "", err)
	}
	if err := s.record(ctx, p, "search", q.Type, page.PatientIdx, ids, len(ids), nil); err != nil {
		return Page{}, err
	}
	return page, nil
}

func (s *Service) search(ctx context.Context, p vitalgate.Principal, q Query) (Page, []string, error) {
	if err := RequireScope(p, q.Type, OpSearch); err != nil {
		return Page{}, nil, err
	}
	if !vitalgate.InSite(p.Site, p.Site) {
		return Page{}, nil, errNoSite
	}
	// Every search is within the principal's site: the store filters by it, and a patient
	// id names the patient of that site (the blind index is per site).
	f := vitalgate.ResourceFilter{Site: p.Site, Type: q.Type, Limit: q.Count + 1, ByEffective: !q.ByPatientToken, Desc: q.Desc,
		EffectiveFrom: q.From, EffectiveTo: q.To}
	if q.Category != "" {
		f.CodeIndex = s.Vault.CodeIndex(fhir.CategoryToken(q.Category, q.Token))
	} else if q.Token != "" {
		if q.Type == "Patient" {
			f.IdentifierIndex = s.Vault.IdentifierIndex(q.Token)
		} else {
			f.CodeIndex = s.Vault.CodeIndex(q.Token)
		}
	}
	var pidx []byte
	if !q.ByPatientToken {
		pidx = s.Vault.SitePatientIndex(p.Site, q.PatientID)
		f.PatientIndex = pidx
		if err := s.CheckPatient(ctx, p, pidx); err != nil {
			return Page{PatientIdx: pidx}, nil, err
		}
	}
	qh := s.queryHash(q)
	if q.Cursor != "" {
		eff, id, err := s.openCursor(q.Cursor, qh)
		if err != nil {
			return Page{PatientIdx: pidx}, nil, err
		}
		f.AfterEffective, f.After = eff, id
	}
	var page Page
	page.PatientIdx = pidx
	var last vitalgate.SealedResource
	var ids []string
	// n counts the resources the caller may see: those a clinician may not see are skipped
	// without taking a place on the page, so that a page is never empty while a later one is
	// not, and the cursor always names a resource the caller was given. The store is read in
	// pages of Count+1 until the page is full or the store has no more.
	n := 0
	for {
		read := 0
		var examined string
		err := s.Store.Resources(ctx, f, func(r vitalgate.SealedResource) error {
			read++
			examined = r.ID
			if q.ByPatientToken {
				if err := s.CheckPatient(ctx, p, r.PatientIndex); err != nil {
					return nil // not visible to this clinician: skip
				}
			}
			n++
			if n > q.Count {
				page.Next = s.cursor(last.Effective, last.ID, qh)
				return errStop
			}
			body, err := s.Vault.Open(ctx, r)
			if err != nil {
				return err
			}
			page.Resources = append(page.Resources, body)
			ids = append(ids, r.ID)
			last = r
			return nil
		})
		if err == errStop {
			return page, ids, nil
		}
		if err != nil {
			return Page{PatientIdx: pidx}, nil, err
		}
		// Only a search across patients skips rows; paging by id resumes after the last
		// one read.
		if !q.ByPatientToken || read < f.Limit {
			return page, ids, nil
		}
		f.After = examined
	}
}

var errStop = &vitalgate.Error{Code: vitalgate.EINTERNAL, Message: "stop"}

// queryHash binds a cursor to the query it came from.
func (s *Service) queryHash(q Query) []byte {
	var b bytes.Buffer
	for _, part := range []string{q.Site, q.Type, q.PatientID, q.Token, q.Category, q.From.UTC().String(), q.To.UTC().String()} {
		b.WriteString(part)
		b.WriteByte(0)
	}
	if q.Desc {
		b.WriteByte(1)
	}
	return s.Vault.Tag("query", b.Bytes())[:8]
}

// cursor encodes a tamper-proof paging position: effective time, id and query hash, MACed.
func (s *Service) cursor(eff time.Time, id string, qh []byte) string {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, uint64(eff.UnixMicro()))
	b = append(b, qh...)
	b = append(b, id...)
	mac := s.Vault.Tag("cursor", b)[:16]
	return base64.RawURLEncoding.EncodeToString(append(b, mac...))
}

func (s *Service) openCursor(c string, qh []byte) (time.Time, string, error) {
	bad := vitalgate.FieldErrorf(vitalgate.EINVALID, "_cursor", "the paging cursor is not valid for this search")
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) < 8+8+1+16 || len(raw) > 8+8+64+16 {
		return time.Time{}, "", bad
	}
	body, mac := raw[:len(raw)-16], raw[len(raw)-16:]
	if !hmac.Equal(mac, s.Vault.Tag("cursor", body)[:16]) || !hmac.Equal(body[8:16], qh) {
		return time.Time{}, "", bad
	}
	eff := time.UnixMicro(int64(binary.BigEndian.Uint64(body[:8]))).UTC() // #nosec G115 -- MAC-checked above: these 8 bytes are uint64(eff.UnixMicro()) written by Service.cursor, so this restores that int64
	return eff, string(body[16:]), nil
}

// organization is the FHIR R4 Organization of a site.
type organization struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Identifier   []fhir.Identifier `json:"identifier"`
	Active       bool              `json:"active"`
	Name         string            `json:"name,omitempty"`
}

// SiteSystem is the identifier system of a site's Organization (and of the meta.tag that
// names the site of every stored resource, package ingest).
const SiteSystem = "urn:vitalgate:site"

// ReadOrganization returns the FHIR Organization of site id: readable by the clients of that
// site only (another site's reads as unknown, audited as a cross-site attempt). It holds no
// patient data, so no SMART scope is needed beyond the route's permission. Every read is
// recorded. Errors: EFORBIDDEN, ENOTFOUND, EUNAVAILABLE.
func (s *Service) ReadOrganization(ctx context.Context, p vitalgate.Principal, id string) ([]byte, error) {
	if !vitalgate.InSite(p.Site, p.Site) {
		return nil, s.fail(ctx, p, "read", "Organization", nil, id, errNoSite)
	}
	if !vitalgate.InSite(p.Site, id) {
		if _, err := s.Store.Site(ctx, id); err == nil {
			return nil, s.refuseSite(ctx, p, id, "Organization", nil, id)
		}
		return nil, s.fail(ctx, p, "read", "Organization", nil, id, notFound("Organization", id))
	}
	site, err := s.Store.Site(ctx, id)
	if err != nil {
		return nil, s.fail(ctx, p, "read", "Organization", nil, id, err)
	}
	body, err := json.Marshal(organization{ResourceType: "Organization", ID: site.ID, Active: true, Name: site.Name,
		Identifier: []fhir.Identifier{{System: SiteSystem, Value: site.ID}}})
	if err != nil {
		return nil, vitalgate.Internal(err, "organization")
	}
	if err := s.record(ctx, p, "read", "Organization", nil, []string{id}, 1, nil); err != nil {
		return nil, err
	}
	return body, nil
}
