package ingest

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/lab"
	"github.com/vitalgate/vitalgate/pcd01"
)

// HL7Options are what a transport accepts of an HL7 v2 message.
type HL7Options struct {
	// Versions and ProcessingIDs accepted (MSH-12, MSH-11); empty means the defaults of the
	// mapping (pcd01: 2.6; lab: 2.5.1 and 2.6; both: P).
	Versions, ProcessingIDs []string
	// Now is the clock of the mapping (no time may be in the future); default the
	// service's.
	Now func() time.Time
}

// HL7Message stores the results of one parsed HL7 v2 message sent by the device deviceID,
// whose TLS identity the transport has established: an IHE PCD-01 ORU^R01 (vital signs), or
// a laboratory result, ORU^R01 as the HL7 LRI sends it or OUL^R22 as IHE LAW sends it (told
// apart by lab.Recognize). The rules are those of every device write, and live here once:
//   - the message names only the sender (MSH-3, OBX-18 with authority VITALGATE; a
//     gateway names its EUI-64 in MSH-3 and speaks for the devices behind it);
//   - mapping and validation (pcd01.Map, lab.Map and lab.ValidateObservation; the common
//     point-of-care analytes of package lab/analyte, others only with
//     LabAcceptUnknownCodes);
//   - the patient by the device model's binding: an assigned device's data belongs to the
//     patient it was assigned to when it measured (PID-3 must name that patient), an
//     identified device's to the Patient of its site that PID-3 names;
//   - sealing, storage in one commit with the audit entry, and the refusal's audit entry.
//
// On nil the data is durable: the transport may acknowledge (AA). A laboratory result that
// was stored before under the same key (lab.Entry.Key) is stored as a new version of it, or
// not at all when it is the very same (a retransmission). An error is a *hl7v2.Error located
// at the segment and field it is about (pcd01.AckCodeFor gives its ACK code).
func (s *Service) HL7Message(ctx context.Context, deviceID string, msg *hl7v2.Message, opt HL7Options) (err error) {
	defer func() { s.auditRefused(ctx, "hl7", audit.AgentDevice, deviceID, "device", err) }()
	if opt.Now == nil {
		opt.Now = s.now
	}
	gateway, err := checkSendingDevice(msg, deviceID)
	if err != nil {
		return err
	}
	if lab.Recognize(msg) {
		_, err := s.labMessage(ctx, deviceID, msg, opt)
		return err
	}
	// A gateway (its EUI-64 in MSH-3 is the certificate's device id) speaks for the devices
	// behind it (OBX-18); otherwise every EUI-64 the message names must be the sender's.
	expected := []string{deviceID}
	if gateway {
		expected = nil
	}
	res, err := pcd01.Map(msg, pcd01.Options{
		DeviceID: deviceID, ExpectedDeviceIDs: expected, Now: opt.Now,
		Versions: opt.Versions, ProcessingIDs: opt.ProcessingIDs,
		MaxObservations: s.MaxObservations(),
		ResolvePatient: func(p pcd01.PatientIdentifier) (string, error) {
			return s.ResolvePatient(ctx, deviceID, p.Value, p.Assigner)
		},
	})
	if err != nil {
		return err
	}
	if len(res.Observations) == 0 {
		e := vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "the message holds no supported numeric vital sign")
		loc := hl7v2.Location{Segment: "OBX", Seq: 1, Field: 3}
		if len(res.Skipped) > 0 {
			loc = res.Skipped[0].Loc
		}
		return hl7v2.WrapError(e, hl7v2.CondTableValue, loc)
	}
	if _, err := s.createObservations(ctx, deviceID, res.Observations); err != nil {
		if loc := obxLocation(err, res); loc != nil {
			return hl7v2.WrapError(err, "", *loc)
		}
		return err
	}
	return nil
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

var obsIndex = regexp.MustCompile(`^Observation\[(\d+)\]`)

// obxLocation points an error about Observation[i] at the OBX segment it came from (pcd01
// records the OBX position in the Observation's identifier as "<MSH-10>/<n>"), or, for its
// subject, at the PID-3 the patient was read from.
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
	loc := hl7v2.Location{Segment: "OBX", Seq: i + 1}
	for _, id := range obs[i].Identifier {
		if _, n, ok := strings.Cut(id.Value, "/"); ok {
			if seq, err := strconv.Atoi(n); err == nil {
				loc.Seq = seq
				break
			}
		}
	}
	l := fieldLocation(e.Field, loc, res.PatientLoc)
	return &l
}

// fieldLocation points an error about element field of the Observation of the OBX segment
// at obx at that segment's field (OBX-5 value, OBX-18 device, OBX-14 time, OBX-3 code), or,
// for its subject, at pid, the PID-3 the patient was read from.
func fieldLocation(field string, obx, pid hl7v2.Location) hl7v2.Location {
	switch {
	case strings.Contains(field, ".value"):
		obx.Field = 5
	case strings.Contains(field, ".subject"):
		return pid
	case strings.Contains(field, ".device"):
		obx.Field = 18
	case strings.Contains(field, ".effective"):
		obx.Field = 14
	case strings.Contains(field, ".code"):
		obx.Field = 3
	}
	return obx
}
