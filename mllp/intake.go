package mllp

import (
	"context"
	"log/slog"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/ingest"
)

// PatientAuthority is the PID-3 assigning authority that names a Vitalgate Patient id
// directly; any other authority is looked up as a Patient identifier (ingest.ResolvePatient).
const PatientAuthority = ingest.PatientAuthority

// AuthoritySystem is the FHIR identifier system under which the identifiers of a PID-3
// assigning authority are looked up when neither its universal id type nor the operator's
// table (--hl7-authority) maps it: hl7v2.AuthoritySystemFallback.
func AuthoritySystem(authority string) string { return hl7v2.AuthoritySystemFallback(authority) }

// Intake is the Handler that takes HL7 v2 result messages from devices: IHE PCD-01
// ORU^R01 (vital signs) and laboratory results (ORU^R01 as the HL7 LRI sends it, OUL^R22 as
// IHE LAW sends it). It authenticates the device by its TLS certificate, parses the
// message, hands it to ingest.Service.HL7Message (mapping, the same validation, patient
// binding, sealing and storage as FHIR), and answers an HL7 v2 ACK: AA only once the data is
// durable, AE or AR with an ERR segment otherwise (errorACK, the one mapping). Messages
// refused before ingest are audited through ingest too (RefuseHL7), with the source address.
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
	if !in.Writes.Acquire() {
		return refuse(vitalgate.Errorf(vitalgate.EUNAVAILABLE, "the server is busy; retry in a moment"), nil)
	}
	defer in.Writes.Release()
	// Every rule (the device identities the message names, mapping, patient binding,
	// sealing, audit) is ingest's; the answer is AA only once the data is durable.
	return reply(in.Ingest.HL7Message(ctx, deviceID, msg, ingest.HL7Options{
		Versions: in.Versions, ProcessingIDs: in.ProcessingIDs, Now: now}), nil)
}

func (in *Intake) log() *slog.Logger {
	if in.Log != nil {
		return in.Log
	}
	return slog.New(slog.DiscardHandler)
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
