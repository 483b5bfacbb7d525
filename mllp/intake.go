package mllp

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/pcd01"
)

// PatientAuthority is the PID-3 assigning authority that names a Vitalgate Patient id
// directly; any other authority is looked up as a Patient identifier (ingest.ResolvePatient).
const PatientAuthority = ingest.PatientAuthority

// AuthoritySystem is the FHIR identifier system under which the identifiers of a PID-3
// assigning authority are looked up when neither its universal id type nor the operator's
// table (--hl7-authority) maps it: hl7v2.AuthoritySystemFallback.
func AuthoritySystem(authority string) string { return hl7v2.AuthoritySystemFallback(authority) }

// Intake is the Handler that takes IHE PCD-01 ORU^R01 messages from devices: it
// authenticates the device by its TLS certificate, parses and maps the message, hands the
// Observations to ingest (the same validation, patient binding, sealing and storage as
// FHIR), and answers an HL7 v2 ACK: AA only once the data is durable, AE or AR with an ERR
// segment otherwise (errorACK, the one mapping). Messages refused before ingest are
// audited through ingest too (RefuseHL7), with the source address.
type Intake struct {
	Ingest *ingest.Service
	Limits hl7v2.Limits
	Log    *slog.Logger
	Now    func() time.Time
	// Versions and ProcessingIDs accepted (MSH-12, MSH-11); empty means pcd01's defaults.
	Versions, ProcessingIDs []string
	// Result, if set, is called with the ACK code of every message (metrics).
	Result func(ack string)
	// Limit, if set, bounds the observations each device may send (token bucket per
	// device, one token per OBX segment); over it a message is refused with AR
	// (application internal error: throttled).
	Limit *guard.Limiter
	// Writes, if set, is the node's bound on writes in progress, shared with HTTPS
	// (--max-inflight-writes); over it a message is refused with AR (busy, retry).
	Writes *guard.Shedder
}

var obsIndex = regexp.MustCompile(`^Observation\[(\d+)\]`)

// HandleMLLP processes one framed message and returns the ACK.
func (in *Intake) HandleMLLP(ctx context.Context, conn ConnInfo, payload []byte) []byte {
	now := time.Now
	if in.Now != nil {
		now = in.Now
	}
	ctx = vitalgate.WithRequestInfo(ctx, vitalgate.RequestInfo{ID: newID(), RemoteIP: remoteIP(conn.RemoteAddr)})
	var msg *hl7v2.Message
	reply := func(err error, loc *hl7v2.Location) []byte {
		ack, code := errorACK(ctx, in.log(), msg, err, loc, now(), newID())
		if in.Result != nil {
			in.Result(code)
		}
		return ack
	}
	deviceID, err := deviceOf(conn)
	// refuse answers a message refused before ingest, and audits it.
	refuse := func(err error, loc *hl7v2.Location) []byte {
		in.Ingest.RefuseHL7(ctx, deviceID, err)
		return reply(err, loc)
	}
	if err != nil {
		return refuse(err, nil)
	}
	if msg, err = hl7v2.Parse(payload, in.Limits); err != nil {
		msg = nil
		return refuse(err, nil)
	}
	if in.Limit != nil {
		if ok, wait := in.Limit.AllowN(deviceID, max(1, len(msg.All("OBX")))); !ok {
			return refuse(vitalgate.Errorf(vitalgate.ETHROTTLED, "too many observations from this device; retry in %d s", guard.RetryAfterSeconds(wait)), nil)
		}
	}
	gateway, err := checkSendingDevice(msg, deviceID)
	if err != nil {
		return refuse(err, nil)
	}
	if !in.Writes.Acquire() {
		return refuse(vitalgate.Errorf(vitalgate.EUNAVAILABLE, "the server is busy; retry in a moment"), nil)
	}
	defer in.Writes.Release()
	// A gateway (its EUI-64 in MSH-3 is the certificate's device id) speaks for the devices
	// behind it (OBX-18); otherwise every EUI-64 the message names must be the sender's.
	expected := []string{deviceID}
	if gateway {
		expected = nil
	}
	res, err := pcd01.Map(msg, pcd01.Options{
		DeviceID: deviceID, ExpectedDeviceIDs: expected, Now: now,
		Versions: in.Versions, ProcessingIDs: in.ProcessingIDs,
		MaxObservations: in.Ingest.MaxObservations(),
		ResolvePatient: func(p pcd01.PatientIdentifier) (string, error) {
			return in.Ingest.ResolvePatient(ctx, deviceID, p.Value, p.Assigner)
		},
	})
	if err != nil {
		return refuse(err, nil)
	}
	if len(res.Observations) == 0 {
		e := vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "the message holds no supported numeric vital sign")
		loc := hl7v2.Location{Segment: "OBX", Seq: 1, Field: 3}
		if len(res.Skipped) > 0 {
			loc = res.Skipped[0].Loc
		}
		return refuse(hl7v2.WrapError(e, hl7v2.CondTableValue, loc), nil)
	}
	if _, err := in.Ingest.CreateObservations(ctx, deviceID, res.Observations); err != nil {
		return reply(err, obxLocation(err, res)) // audited by ingest
	}
	return reply(nil, nil)
}

func (in *Intake) log() *slog.Logger {
	if in.Log != nil {
		return in.Log
	}
	return slog.New(slog.DiscardHandler)
}

// checkSendingDevice checks the device identities a message names against the TLS
// identity, in every form: each repetition of MSH-3 must name the sender, by its EUI-64
// (MSH-3.2 when MSH-3.3 is EUI-64: the sender is a gateway, reported true) or by its id
// (MSH-3.1, else MSH-3.2, whatever MSH-3.3 says); OBX-18.1 must be the sender when
// OBX-18.2 is VITALGATE. (The EUI-64s of OBX-18 are checked by pcd01.Map.)
func checkSendingDevice(msg *hl7v2.Message, deviceID string) (gateway bool, err error) {
	if msh := msg.Segment("MSH"); msh != nil {
		f := msh.Field(3)
		for r := 1; r <= len(f); r++ {
			rep := f.Rep(r)
			l := hl7v2.Location{Segment: "MSH", Seq: 1, Field: 3, Rep: r}
			if strings.EqualFold(strings.TrimSpace(rep.Comp(3).Value()), "EUI-64") {
				if !sameEUI64(rep.Comp(2).Value(), deviceID) {
					return false, hl7v2.NewError(vitalgate.EFORBIDDEN, hl7v2.CondUnknownKey, l,
						"MSH-3 names a sending device other than the one whose certificate sent the message")
				}
				gateway = true
				continue
			}
			name := strings.TrimSpace(rep.Comp(1).Value())
			if name == "" {
				name = strings.TrimSpace(rep.Comp(2).Value())
			}
			if name != "" && name != deviceID {
				return false, hl7v2.NewError(vitalgate.EFORBIDDEN, hl7v2.CondUnknownKey, l,
					"MSH-3 names a device other than the one whose certificate sent the message")
			}
		}
	}
	for i, obx := range msg.All("OBX") {
		for r := 1; ; r++ {
			rep := obx.Field(18).Rep(r)
			if rep == nil {
				break
			}
			if rep.Comp(2).Value() == PatientAuthority && rep.Comp(1).Value() != deviceID {
				return false, hl7v2.NewError(vitalgate.EFORBIDDEN, hl7v2.CondUnknownKey, hl7v2.Location{Segment: "OBX", Seq: i + 1, Field: 18},
					"OBX-18 names a device other than the one whose certificate sent the message")
			}
		}
	}
	return gateway, nil
}

// sameEUI64 compares EUI-64s ignoring case and '-' or ':' separators.
func sameEUI64(a, b string) bool {
	norm := strings.NewReplacer("-", "", ":", "")
	return strings.EqualFold(norm.Replace(strings.TrimSpace(a)), norm.Replace(b))
}

// deviceOf returns the device the registry authorized for this message (the server asks its
// Authorizer before every message and records the answer in ConnInfo.DeviceID): the rule
// that a certificate's device may act lives in the registry alone.
func deviceOf(conn ConnInfo) (string, error) {
	if conn.TLS == nil || len(conn.TLS.PeerCertificates) == 0 {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "a device client certificate is required")
	}
	if conn.DeviceID == "" {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "the client certificate has not been authorized by the device registry")
	}
	return conn.DeviceID, nil
}

// obxLocation points an ingest error about Observation[i] at the OBX segment it came from
// (pcd01 records the OBX position in the Observation's identifier as "<MSH-10>/<n>"), or,
// for its subject, at the PID-3 the patient was read from.
func obxLocation(err error, res *pcd01.Result) *hl7v2.Location {
	obs := res.Observations
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
		pl := res.PatientLoc
		loc = &pl
	case strings.Contains(e.Field, ".device"):
		loc.Field = 18
	case strings.Contains(e.Field, ".effective"):
		loc.Field = 14
	case strings.Contains(e.Field, ".code"):
		loc.Field = 3
	}
	return loc
}
