package mllp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/pcd01"
	"github.com/vitalgate/vitalgate/pki"
)

// PatientAuthority is the PID-3 assigning authority that names a Vitalgate Patient id
// directly; any other authority is looked up as a Patient identifier.
const PatientAuthority = "VITALGATE"

// AuthoritySystem is the FHIR identifier system under which a PID-3 assigning authority's
// patient identifiers are registered: create the Patient with identifier
// {system: AuthoritySystem(authority), value: PID-3.1} and HL7 messages resolve to it.
func AuthoritySystem(authority string) string {
	return "urn:vitalgate:hl7-authority:" + url.PathEscape(authority)
}

// PatientResolver finds the Patient id of an identifier (system|value), for PID-3.
type PatientResolver func(ctx context.Context, identifierKey string) (string, error)

// Intake is the Handler that takes IHE PCD-01 ORU^R01 messages from devices: it
// authenticates the device by its TLS certificate, parses and maps the message, hands the
// Observations to ingest (the same validation, patient assignment, sealing and storage as
// FHIR), and answers an HL7 v2 ACK: AA only once the data is durable, AE or AR with an ERR
// segment otherwise.
type Intake struct {
	Ingest         *ingest.Service
	ResolvePatient PatientResolver
	Limits         hl7v2.Limits
	Log            *slog.Logger
	Now            func() time.Time
	// Versions and ProcessingIDs accepted (MSH-12, MSH-11); empty means pcd01's defaults.
	Versions, ProcessingIDs []string
	// Result, if set, is called with the ACK code of every message (metrics).
	Result func(ack string)
	// Limit, if set, bounds the messages each device may send (token bucket per device);
	// over it a message is refused with AR (application internal error: throttled).
	Limit *guard.Limiter
}

var obsIndex = regexp.MustCompile(`^Observation\[(\d+)\]`)

// HandleMLLP processes one framed message and returns the ACK.
func (in *Intake) HandleMLLP(ctx context.Context, conn ConnInfo, payload []byte) []byte {
	now := time.Now
	if in.Now != nil {
		now = in.Now
	}
	ack := func(msg *hl7v2.Message, err error, loc *hl7v2.Location) []byte {
		code, cond := pcd01.AckCodeFor(err)
		var errs []hl7v2.AckError
		if err != nil {
			ae := hl7v2.AckErrorFrom(err)
			if ae.Condition == "" {
				ae.Condition = cond
			}
			if loc != nil && ae.Loc.Segment == "" {
				ae.Loc = *loc
			}
			errs = append(errs, ae)
			if vitalgate.ErrorCode(err) == vitalgate.EINTERNAL || vitalgate.ErrorCode(err) == vitalgate.EUNAVAILABLE {
				in.log().Error("hl7 message failed", "remote", conn.RemoteAddr.String(), "error", err.Error())
			}
		}
		if in.Result != nil {
			in.Result(code)
		}
		return hl7v2.BuildACK(msg, code, errs, now(), newControlID())
	}

	deviceID, err := deviceOf(conn)
	if err != nil {
		return ack(nil, err, nil)
	}
	if in.Limit != nil {
		if ok, wait := in.Limit.Allow(deviceID); !ok {
			return ack(nil, vitalgate.Errorf(vitalgate.ETHROTTLED, "too many messages from this device; retry in %d s", guard.RetryAfterSeconds(wait)), nil)
		}
	}
	msg, err := hl7v2.Parse(payload, in.Limits)
	if err != nil {
		return ack(nil, err, nil)
	}
	if err := checkNamedDevice(msg, deviceID); err != nil {
		return ack(msg, err, nil)
	}
	// A gateway (its EUI-64 in MSH-3 is the certificate's device id) speaks for the devices
	// behind it (OBX-18); otherwise every EUI-64 the message names must be the sender's.
	expected := []string{deviceID}
	if msh := msg.Segment("MSH"); msh != nil {
		rep := msh.Field(3).Rep(1)
		if strings.EqualFold(rep.Comp(3).Value(), "EUI-64") {
			if !strings.EqualFold(rep.Comp(2).Value(), deviceID) {
				return ack(msg, hl7v2.NewError(vitalgate.EFORBIDDEN, hl7v2.CondUnknownKey, hl7v2.Location{Segment: "MSH", Seq: 1, Field: 3},
					"MSH-3 names a sending device other than the one whose certificate sent the message"), nil)
			}
			expected = nil
		}
	}
	res, err := pcd01.Map(msg, pcd01.Options{
		DeviceID: deviceID, ExpectedDeviceIDs: expected, Now: now,
		Versions: in.Versions, ProcessingIDs: in.ProcessingIDs,
		ResolvePatient: func(value, authority string) (string, error) {
			if authority == PatientAuthority {
				return value, nil
			}
			if in.ResolvePatient == nil {
				return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "patient identifiers are resolved only with authority %s", PatientAuthority)
			}
			return in.ResolvePatient(ctx, AuthoritySystem(authority)+"|"+value)
		},
	})
	if err != nil {
		return ack(msg, err, nil)
	}
	if len(res.Observations) == 0 {
		e := vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "the message holds no supported numeric vital sign")
		loc := hl7v2.Location{Segment: "OBX", Seq: 1, Field: 3}
		if len(res.Skipped) > 0 {
			loc = res.Skipped[0].Loc
		}
		return ack(msg, hl7v2.WrapError(e, hl7v2.CondTableValue, loc), nil)
	}
	if _, err := in.Ingest.CreateObservations(ctx, deviceID, res.Observations); err != nil {
		return ack(msg, err, obxLocation(err, res.Observations))
	}
	return ack(msg, nil, nil)
}

func (in *Intake) log() *slog.Logger {
	if in.Log != nil {
		return in.Log
	}
	return slog.New(slog.DiscardHandler)
}

// checkNamedDevice checks the device identities a message names in Vitalgate's own
// namespace against the TLS identity: MSH-3.1 when MSH-3 has no universal id type (a bare
// device id), and OBX-18.1 when OBX-18.2 is VITALGATE. (EUI-64 identities are checked by
// pcd01.Map.)
func checkNamedDevice(msg *hl7v2.Message, deviceID string) error {
	if msh := msg.Segment("MSH"); msh != nil {
		rep := msh.Field(3).Rep(1)
		if id := rep.Comp(1).Value(); id != "" && rep.Comp(3).Value() == "" && id != deviceID && rep.Comp(2).Value() == "" {
			return hl7v2.NewError(vitalgate.EFORBIDDEN, hl7v2.CondUnknownKey, hl7v2.Location{Segment: "MSH", Seq: 1, Field: 3},
				"MSH-3 names a device other than the one whose certificate sent the message")
		}
	}
	for i, obx := range msg.All("OBX") {
		for r := 1; ; r++ {
			rep := obx.Field(18).Rep(r)
			if rep == nil {
				break
			}
			if rep.Comp(2).Value() == PatientAuthority && rep.Comp(1).Value() != deviceID {
				return hl7v2.NewError(vitalgate.EFORBIDDEN, hl7v2.CondUnknownKey, hl7v2.Location{Segment: "OBX", Seq: i + 1, Field: 18},
					"OBX-18 names a device other than the one whose certificate sent the message")
			}
		}
	}
	return nil
}

// deviceOf returns the device id of the connection's verified client certificate.
func deviceOf(conn ConnInfo) (string, error) {
	if conn.TLS == nil || len(conn.TLS.PeerCertificates) == 0 {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "a device client certificate is required")
	}
	id, ok := pki.DeviceIDFromCert(conn.TLS.PeerCertificates[0])
	if !ok {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "the client certificate is not a device certificate")
	}
	return id, nil
}

// obxLocation points an ingest error about Observation[i] at the OBX segment it came from
// (pcd01 records the OBX position in the Observation's identifier as "<MSH-10>/<n>").
func obxLocation(err error, obs []*fhir.Observation) *hl7v2.Location {
	var e *vitalgate.Error
	if !errors.As(err, &e) {
		return nil
	}
	m := obsIndex.FindStringSubmatch(e.Field)
	if m == nil {
		return nil
	}
	i, _ := strconv.Atoi(m[1])
	if i >= len(obs) {
		return nil
	}
	loc := &hl7v2.Location{Segment: "OBX", Seq: i + 1}
	for _, id := range obs[i].Identifier {
		if _, n, ok := strings.Cut(id.Value, "/"); ok {
			if seq, err := strconv.Atoi(n); err == nil {
				loc.Seq = seq
				break
			}
		}
	}
	switch {
	case strings.Contains(e.Field, ".value"):
		loc.Field = 5
	case strings.Contains(e.Field, ".subject"):
		loc = &hl7v2.Location{Segment: "PID", Seq: 1, Field: 3}
	case strings.Contains(e.Field, ".effective"):
		loc.Field = 14
	case strings.Contains(e.Field, ".code"):
		loc.Field = 3
	}
	return loc
}

func newControlID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
