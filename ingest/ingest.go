// Package ingest validates, seals and stores incoming device data, once for every transport
// (FHIR over HTTPS today, HL7 v2 over MLLP later). A transport authenticates the device and
// hands the decoded request here; ingest applies every rule that does not depend on the wire
// format: structure and vocabulary (package fhir), plausible ranges (package vitals), the
// device's patient assignment, and the device's own identity.
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
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/vault"
)

// DeviceLookup finds the registered device behind an authenticated caller.
type DeviceLookup interface {
	Device(ctx context.Context, id string) (vitalgate.Device, error)
}

// ResourceWriter durably stores sealed resources, all or none.
type ResourceWriter interface {
	CreateResources(ctx context.Context, rs []vitalgate.SealedResource, audit ...[]byte) error
}

// Service ingests device data.
type Service struct {
	Devices   DeviceLookup
	Resources ResourceWriter
	Vault     *vault.Vault
	Limits    fhir.Limits
	Now       func() time.Time // defaults to time.Now
	Rand      io.Reader        // defaults to crypto/rand
	// Audit, when set, receives an entry for every create, committed with the write, and
	// for every refused one.
	Audit *audit.Log
	// Finder, when set, finds an Observation stored before under one of the identifiers of a
	// new one (through their blind indexes): a device that sends the same observation again
	// (a retry after a lost answer, an HL7 retransmission) gets the stored one back instead
	// of a duplicate.
	Finder PatientFinder
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
		err := s.Finder.Resources(ctx, vitalgate.ResourceFilter{Type: "Observation", PatientIndex: d.PatientIndex,
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
		if again, err := same.Marshal(); err != nil || !bytes.Equal(again, body) {
			continue
		}
		return Created{Type: "Observation", ID: found.ID, Version: found.Version, LastUpdated: found.LastUpdated,
			Body: body, Existing: true}, true, nil
	}
	return Created{}, false, nil
}

// auditCreate returns the stored audit entry for resources created by an agent, or none.
func (s *Service) auditCreate(ctx context.Context, typ, agentType, agentID, role string, pidx []byte, rs []vitalgate.SealedResource) [][]byte {
	if s.Audit == nil {
		return nil
	}
	e := audit.Entry{Action: audit.ActionCreate, Type: typ, Subtype: "create", AgentType: agentType,
		AgentID: agentID, AgentRole: role, PatientIndex: audit.PatientIndex(pidx)}
	for _, r := range rs {
		e.Resources = append(e.Resources, r.Type+"/"+r.ID)
	}
	return [][]byte{s.Audit.Encode(ctx, e)}
}

// auditRefused records a refused create (best effort: the caller gets its error anyway).
func (s *Service) auditRefused(ctx context.Context, typ, agentType, agentID, role string, err error) {
	if s.Audit == nil || err == nil {
		return
	}
	outcome := audit.OutcomeMinorFailure
	if c := vitalgate.ErrorCode(err); c == vitalgate.EINTERNAL || c == vitalgate.EUNAVAILABLE {
		outcome = audit.OutcomeSeriousFailure
	}
	_ = s.Audit.Append(ctx, audit.Entry{Action: audit.ActionCreate, Type: typ, Subtype: "create",
		AgentType: agentType, AgentID: agentID, AgentRole: role, Outcome: outcome,
		OutcomeDesc: vitalgate.ErrorCode(err) + ": " + vitalgate.ErrorMessage(err)})
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
	return c.Type + "/" + c.ID + "/_history/1"
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

// caller loads the device and checks that it may send data.
func (s *Service) caller(ctx context.Context, deviceID string) (vitalgate.Device, error) {
	d, err := s.Devices.Device(ctx, deviceID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return d, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q is not registered", deviceID)
	} else if err != nil {
		return d, err
	}
	if d.Status != vitalgate.DeviceActive {
		return d, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q has been revoked", deviceID)
	}
	if len(d.PatientIndex) == 0 {
		return d, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q is not assigned to a patient", deviceID)
	}
	return d, nil
}

// checkCaller applies the rules that tie an Observation to the sending device: its subject
// must be the device's assigned patient, and a device reference, if present, the device itself.
func (s *Service) checkCaller(o *fhir.Observation, d vitalgate.Device, path string) error {
	pid, ok := o.SubjectID()
	if !ok {
		return vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, path+".subject",
			"subject must reference a Patient (Patient/<id>)")
	}
	if !bytes.Equal(s.Vault.PatientIndex(pid), d.PatientIndex) {
		return vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, path+".subject",
			"subject is not the patient this device is assigned to")
	}
	if o.Device != nil {
		did, ok := o.DeviceID()
		if !ok || did != d.ID {
			return vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, path+".device",
				"device must reference the sending device itself (Device/%s)", d.ID)
		}
	}
	return nil
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
	body, err := o.Marshal()
	if err != nil {
		return prepared{}, vitalgate.Internal(err, "marshal observation")
	}
	sealedBody, err := s.Vault.Seal(ctx, d.PatientIndex, "Observation", id, 1, body)
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
			Type: "Observation", ID: id, Version: 1,
			PatientIndex: d.PatientIndex, CodeIndexes: codes, IdentifierIndexes: idents,
			Effective: eff.UTC(), LastUpdated: now, Body: sealedBody,
		},
	}, nil
}

// CreateObservation validates one FHIR Observation sent by the device deviceID and stores it.
// On success the observation is durable. Errors: EINVALID (malformed), EUNPROCESSABLE (breaks
// a rule), EFORBIDDEN (wrong patient or device), ETOOLARGE, EUNAVAILABLE (store busy).
func (s *Service) CreateObservation(ctx context.Context, deviceID string, body []byte) (c Created, err error) {
	defer func() { s.auditRefused(ctx, "rest", audit.AgentDevice, deviceID, "device", err) }()
	o, err := fhir.DecodeObservation(body)
	if err != nil {
		return Created{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if err := fhir.ValidateObservation(o, now); err != nil {
		return Created{}, err
	}
	d, err := s.caller(ctx, deviceID)
	if err != nil {
		return Created{}, err
	}
	if err := s.checkCaller(o, d, "Observation"); err != nil {
		return Created{}, err
	}
	if len(o.HasMember) > 0 {
		return Created{}, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, "Observation.hasMember",
			"a panel with hasMember must be sent in a transaction Bundle together with its members")
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
	if err := s.Resources.CreateResources(ctx, rs, s.auditCreate(ctx, "rest", audit.AgentDevice, deviceID, "device", d.PatientIndex, rs)...); err != nil {
		return Created{}, err
	}
	return p.created, nil
}

// CreateObservations validates already-decoded Observations from the device deviceID (for
// example mapped from an HL7 v2 message) and stores them all in one commit, or none. On
// success every one is durable. Errors name the offending Observation by index
// ("Observation[2].valueQuantity").
func (s *Service) CreateObservations(ctx context.Context, deviceID string, obs []*fhir.Observation) (created []Created, err error) {
	defer func() { s.auditRefused(ctx, "hl7", audit.AgentDevice, deviceID, "device", err) }()
	now := s.now().UTC().Truncate(time.Microsecond)
	d, err := s.caller(ctx, deviceID)
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
		if err := s.checkCaller(o, d, path); err != nil {
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
		return nil, nil
	}
	if err := s.Resources.CreateResources(ctx, batch, s.auditCreate(ctx, "hl7", audit.AgentDevice, deviceID, "device", d.PatientIndex, batch)...); err != nil {
		return nil, err
	}
	return out, nil
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
