// Package ingest validates, seals and stores incoming device data, once for every transport
// (FHIR over HTTPS, HL7 v2 over MLLP). A transport authenticates the device and hands the
// decoded request here; ingest applies every rule that does not depend on the wire format:
// structure and vocabulary (package fhir), plausible ranges (package vitals), bounds on age
// and size, and the binding of each observation to the sending device and to the patient
// the device was assigned to when it made the observation (Registry). It builds the audit
// entries of every create and every refusal, including refusals a transport makes before
// a message reaches it (RefuseHL7).
package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/vault"
)

// Registry is the device registry as ingest uses it.
type Registry interface {
	// Sender returns the device if it may send data now: registered and active.
	// EFORBIDDEN when it is not registered, revoked or otherwise barred.
	Sender(ctx context.Context, deviceID string) (vitalgate.Device, error)
	// PatientAt returns the assignment that binds data the device measured at t: the one
	// covering t, if it is current or ended no longer ago than the configured window.
	// EFORBIDDEN when no assignment binds it (the message names no patient).
	PatientAt(ctx context.Context, deviceID string, t time.Time) (vitalgate.Assignment, error)
	// Binding returns the patient-binding policy of the device's model.
	Binding(ctx context.Context, d vitalgate.Device) (vitalgate.Binding, error)
}

// UnitChecker tells a device's care unit and whether a patient is admitted to it.
type UnitChecker interface {
	UnitCheck(ctx context.Context, deviceID, site string, patientIndex []byte) (unit string, admitted bool, err error)
}

// ResourceWriter durably stores sealed resources, all or none.
type ResourceWriter interface {
	CreateResources(ctx context.Context, rs []vitalgate.SealedResource, audit ...[]byte) error
}

// Finder finds stored resources: by blind index (resends, patient identifiers) and by id
// (the Observations a new one is derived from).
type Finder interface {
	PatientFinder
	// Resource returns one resource. ENOTFOUND.
	Resource(ctx context.Context, typ, id string) (vitalgate.SealedResource, error)
}

// DefaultMaxBackdate is the default of Service.MaxBackdate: a week, long enough for a home
// device (blood pressure cuff, scale, glucometer) that buffers readings while it has no
// connection, short enough that a device whose clock was reset (1970, 2000) is refused.
const DefaultMaxBackdate = 7 * 24 * time.Hour

// Service ingests device data.
type Service struct {
	// Registry decides which device may send and to which patient its data belongs at the
	// time it was measured; required.
	Registry  Registry
	Resources ResourceWriter
	Vault     *vault.Vault
	Limits    fhir.Limits
	Now       func() time.Time // defaults to time.Now
	Rand      io.Reader        // defaults to crypto/rand
	// Audit, when set, receives an entry for every create, committed with the write, and
	// for every refused one.
	Audit *audit.Log
	// Finder finds stored resources: an Observation stored before under one of the
	// identifiers of a new one (through their blind indexes), so that a device that sends
	// the same observation again (a retry after a lost answer, an HL7 retransmission) gets
	// the stored one back instead of a duplicate; the Observations a new one is derived
	// from; the Patients that subject.identifier and HL7 PID-3 name. Without it resends are
	// stored again and references that need a look-up are refused.
	Finder Finder
	// Units tells the care unit a shared (identified) device is placed in and whether a
	// patient is admitted to it (the store). Nil: no device is placed in a unit.
	Units UnitChecker
	// MaxBackdate is how old an observation's effective time may be; older ones are
	// refused (EUNPROCESSABLE at Observation.effective[x]). Zero means DefaultMaxBackdate.
	MaxBackdate time.Duration
	// Authorities maps HL7 assigning authorities known by name to FHIR identifier systems
	// (ResolvePatient, hl7v2.IdentifierSystem).
	Authorities hl7v2.AuthorityTable
	// LabAcceptUnknownCodes accepts laboratory results whose LOINC code package lab/analyte
	// does not list, without unit or range checks (lab.Options.AcceptUnknownCodes). Default
	// false: such a result is refused (AE at OBX-3).
	LabAcceptUnknownCodes bool
	// Signals receives the detection signals of ingest (signals.go); nil: detection off.
	Signals detect.Sink
}

// identifies reports whether an identifier names one observation: it has a system and a
// value and is not a secondary one (such as the containment path HL7 messages repeat).
func identifies(ident fhir.Identifier) bool {
	return ident.System != "" && ident.Value != "" && ident.Use != "secondary"
}

// existing returns the Observation stored before for the same patient under one of o's
// identifiers with the same content, if any (a resend).
func (s *Service) existing(ctx context.Context, o *fhir.Observation, d vitalgate.Device) (Created, bool, error) {
	if s.Finder == nil {
		return Created{}, false, nil
	}
	for _, ident := range o.Identifier {
		if !identifies(ident) {
			continue
		}
		var found vitalgate.SealedResource
		err := s.Finder.Resources(ctx, vitalgate.ResourceFilter{Site: d.Site, Type: "Observation", PatientIndex: d.PatientIndex,
			IdentifierIndex: s.Vault.IdentifierIndex(ident.System + "|" + ident.Value), Limit: 1},
			func(r vitalgate.SealedResource) error { found = r; return errFound })
		if err != nil && err != errFound {
			return Created{}, false, err
		}
		if found.ID == "" {
			continue
		}
		body, err := s.Vault.Open(ctx, found)
		if err != nil {
			return Created{}, false, err
		}
		// Only the very same observation is a resend; a different one that reuses the
		// identifier is stored as what it is.
		same := *o
		if o.Meta != nil {
			meta := *o.Meta // SetMeta writes into Meta: keep o's untouched
			same.Meta = &meta
		}
		same.SetMeta(found.ID, strconv.Itoa(found.Version), found.LastUpdated)
		same.Meta.Tag = SiteTag(same.Meta.Tag, found.Site)
		if again, err := same.Marshal(); err != nil || !bytes.Equal(again, body) {
			continue
		}
		s.resend(ctx, d)
		return Created{Type: "Observation", ID: found.ID, Version: found.Version, LastUpdated: found.LastUpdated,
			Body: body, Existing: true}, true, nil
	}
	return Created{}, false, nil
}

// auditCreate returns the stored audit entries for resources created by an agent: one per
// patient concerned, or none, each of the resources' site; desc, when set, says how the
// patient was resolved (a device that identifies its patients).
func (s *Service) auditCreate(ctx context.Context, typ, agentType, agentID, role, desc string, rs []vitalgate.SealedResource) [][]byte {
	if s.Audit == nil {
		return nil
	}
	var out [][]byte
	var order []string
	byPatient := map[string]*audit.Entry{}
	for _, r := range rs {
		px := audit.PatientIndex(r.PatientIndex)
		e, ok := byPatient[px]
		if !ok {
			e = &audit.Entry{Action: audit.ActionCreate, Type: typ, Subtype: "create", AgentType: agentType,
				AgentID: agentID, AgentRole: role, PatientIndex: px, Site: r.Site, OutcomeDesc: desc}
			byPatient[px] = e
			order = append(order, px)
		}
		e.Resources = append(e.Resources, r.Type+"/"+r.ID)
	}
	for _, px := range order {
		out = append(out, s.Audit.Encode(ctx, *byPatient[px]))
	}
	return out
}

// auditRefused records a refused create (best effort: the caller gets its error anyway).
// The entry carries the error code and the element it names, never the message: messages
// may quote clinical values ("heart rate of 400 /min is outside ...").
func (s *Service) auditRefused(ctx context.Context, typ, agentType, agentID, role string, err error) {
	s.auditRefusedIn(ctx, "", typ, agentType, agentID, role, err)
}

// auditRefusedIn is auditRefused with the site of the entry; for a device agent an empty site
// is the device's own (a refused device's record still names its site).
func (s *Service) auditRefusedIn(ctx context.Context, site, typ, agentType, agentID, role string, err error) {
	defer func() { s.refusal(ctx, agentType, agentID, site, err) }()
	if s.Audit == nil || err == nil {
		return
	}
	if site == "" && agentType == audit.AgentDevice && s.Registry != nil && agentID != "" {
		d, _ := s.Registry.Sender(ctx, agentID)
		site = d.Site
	}
	outcome := audit.OutcomeMinorFailure
	if c := vitalgate.ErrorCode(err); c == vitalgate.EINTERNAL || c == vitalgate.EUNAVAILABLE {
		outcome = audit.OutcomeSeriousFailure
	}
	_ = s.Audit.Append(ctx, audit.Entry{Action: audit.ActionCreate, Type: typ, Subtype: "create",
		AgentType: agentType, AgentID: agentID, AgentRole: role, Outcome: outcome,
		OutcomeDesc: refusalDesc(err), Site: site})
}

// refusalDesc describes a refusal for the audit log: the error code and, if it names one,
// the element ("unprocessable: Observation.valueQuantity.value"). The code leads, before the
// colon, so that the audit log folds repeated refusals of one kind into a count.
func refusalDesc(err error) string {
	d := vitalgate.ErrorCode(err)
	if f := vitalgate.ErrorField(err); f != "" {
		d += ": " + f
	}
	return d
}

// Created describes a stored resource.
type Created struct {
	Type        string
	ID          string
	Version     int
	LastUpdated time.Time
	Body        []byte // the stored resource as JSON (plaintext, for the response only)
	// Existing is set when the resource had been stored before (same identifier): nothing
	// new was written.
	Existing bool
}

// Location returns the resource's versioned relative URL, e.g. "Observation/123/_history/1".
func (c Created) Location() string {
	return c.Type + "/" + c.ID + "/_history/" + strconv.Itoa(c.Version)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}

// NewID returns a new server-assigned resource id: 32 lowercase hex digits, the first 12 a
// millisecond timestamp so that ids sort roughly by creation time, the rest random.
func NewID(now time.Time, rnd io.Reader) (string, error) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := io.ReadFull(rnd, b[6:]); err != nil {
		return "", vitalgate.Internal(err, "resource id")
	}
	return hex.EncodeToString(b[:]), nil
}

// prepared is a validated observation with its server-assigned identity.
type prepared struct {
	obs     *fhir.Observation
	created Created
	sealed  vitalgate.SealedResource
}

// prepare assigns id and meta, marshals, seals and indexes a validated observation.
func (s *Service) prepare(ctx context.Context, o *fhir.Observation, d vitalgate.Device, id string, now time.Time) (prepared, error) {
	o.SetMeta(id, "1", now)
	o.Meta.Tag = SiteTag(o.Meta.Tag, d.Site)
	body, err := o.Marshal()
	if err != nil {
		return prepared{}, vitalgate.Internal(err, "marshal observation")
	}
	sealedBody, err := s.Vault.SealIn(ctx, d.Site, d.PatientIndex, "Observation", id, 1, body)
	if err != nil {
		return prepared{}, err
	}
	var codes, idents [][]byte
	for _, c := range o.Codes() {
		codes = append(codes, s.Vault.CodeIndex(c.System+"|"+c.Code), s.Vault.CodeIndex(c.Code))
	}
	for _, ident := range o.Identifier {
		if identifies(ident) {
			idents = append(idents, s.Vault.IdentifierIndex(ident.System+"|"+ident.Value))
		}
	}
	eff, _ := o.EffectiveTime()
	return prepared{
		obs:     o,
		created: Created{Type: "Observation", ID: id, Version: 1, LastUpdated: now, Body: body},
		sealed: vitalgate.SealedResource{
			Type: "Observation", ID: id, Version: 1, Site: d.Site,
			PatientIndex: d.PatientIndex, CodeIndexes: codes, IdentifierIndexes: idents,
			Effective: eff.UTC(), LastUpdated: now, Body: sealedBody,
		},
	}, nil
}

// CreateObservation validates one FHIR Observation sent by the device deviceID and stores it
// under the patient the device was assigned to when it made the observation. On success
// the observation is durable. Errors: EINVALID (malformed), EUNPROCESSABLE (breaks a rule,
// too old, an element too long), EFORBIDDEN (device barred, another patient or device
// named), ETOOLARGE, EUNAVAILABLE (store busy).
func (s *Service) CreateObservation(ctx context.Context, deviceID string, body []byte) (c Created, err error) {
	defer func() { s.auditRefused(ctx, "rest", audit.AgentDevice, deviceID, "device", err) }()
	o, err := fhir.DecodeObservationWith(body, s.Limits)
	if err != nil {
		return Created{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if err := fhir.ValidateObservation(o, now); err != nil {
		return Created{}, err
	}
	if len(o.HasMember) > 0 {
		return Created{}, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, "Observation.hasMember",
			"a panel with hasMember must be sent in a transaction Bundle together with its members")
	}
	b, err := s.newBinder(ctx, deviceID, now)
	if err != nil {
		return Created{}, err
	}
	d, err := b.bind(ctx, o, "Observation", nil)
	if err != nil {
		return Created{}, err
	}
	if prev, ok, err := s.existing(ctx, o, d); err != nil || ok {
		return prev, err
	}
	id, err := NewID(now, s.rand())
	if err != nil {
		return Created{}, err
	}
	p, err := s.prepare(ctx, o, d, id, now)
	if err != nil {
		return Created{}, err
	}
	rs := []vitalgate.SealedResource{p.sealed}
	if err := s.Resources.CreateResources(ctx, rs, s.auditCreate(ctx, "rest", audit.AgentDevice, deviceID, "device", b.resolved("subject reference"), rs)...); err != nil {
		return Created{}, err
	}
	s.accepted(ctx, d, o)
	return p.created, nil
}

// CreateObservations validates already-decoded Observations from the device deviceID (for
// example mapped from an HL7 v2 message) and stores them all in one commit, or none; each
// is bound to the patient the device was assigned to when it was made, so a buffered upload
// that spans a reassignment stores each under its own patient. On success every one is
// durable, and the result holds one Created per observation (Existing for one stored
// before). Errors name the offending Observation by index ("Observation[2].valueQuantity");
// more observations than Limits.MaxEntries is ETOOLARGE.
func (s *Service) CreateObservations(ctx context.Context, deviceID string, obs []*fhir.Observation) (created []Created, err error) {
	defer func() { s.auditRefused(ctx, "hl7", audit.AgentDevice, deviceID, "device", err) }()
	return s.createObservations(ctx, deviceID, obs)
}

// createObservations is CreateObservations without the refusal's audit entry (its caller
// writes it).
func (s *Service) createObservations(ctx context.Context, deviceID string, obs []*fhir.Observation) ([]Created, error) {
	if max := s.MaxObservations(); len(obs) > max {
		return nil, vitalgate.Errorf(vitalgate.ETOOLARGE, "a message may hold at most %d observations; send the rest in another message", max)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	b, err := s.newBinder(ctx, deviceID, now)
	if err != nil {
		return nil, err
	}
	var batch []vitalgate.SealedResource
	out := make([]Created, 0, len(obs))
	for i, o := range obs {
		path := "Observation[" + strconv.Itoa(i) + "]"
		if err := fhir.ValidateObservation(o, now); err != nil {
			return nil, reroot(err, path)
		}
		if len(o.HasMember) > 0 {
			return nil, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, path+".hasMember", "panels with hasMember are not supported here")
		}
		d, err := b.bind(ctx, o, path, nil)
		if err != nil {
			return nil, err
		}
		if prev, ok, err := s.existing(ctx, o, d); err != nil {
			return nil, err
		} else if ok { // sent before (an HL7 retransmission): keep the stored one
			out = append(out, prev)
			continue
		}
		id, err := NewID(now, s.rand())
		if err != nil {
			return nil, err
		}
		p, err := s.prepare(ctx, o, d, id, now)
		if err != nil {
			return nil, err
		}
		batch = append(batch, p.sealed)
		out = append(out, p.created)
	}
	if len(batch) == 0 {
		return out, nil // every one was a resend: the stored ones
	}
	if err := s.Resources.CreateResources(ctx, batch, s.auditCreate(ctx, "hl7", audit.AgentDevice, deviceID, "device", b.resolved("HL7 PID-3"), batch)...); err != nil {
		return nil, err
	}
	s.accepted(ctx, b.dev, obs...)
	return out, nil
}

// MaxObservations returns the most observations one request may carry: the Bundle entry
// limit (Limits.MaxEntries), which bounds HL7 messages too.
func (s *Service) MaxObservations() int {
	if s.Limits.MaxEntries > 0 {
		return s.Limits.MaxEntries
	}
	return fhir.DefaultLimits().MaxEntries
}

// reroot replaces the leading "Observation" of an error's element path with path.
func reroot(err error, path string) error {
	var e *vitalgate.Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	c.Field = path + strings.TrimPrefix(c.Field, "Observation")
	return &c
}
