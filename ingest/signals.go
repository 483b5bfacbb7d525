package ingest

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/vitals"
)

// The detection signals of ingest (Service.Signals; nil: detection off). Each is emitted
// once, where the fact is decided: an accepted message (with the source address the
// transport put in ctx, and its numeric readings, which stay in memory), a refusal (its
// code and element, never its message), an HL7 patient identifier that names no Patient
// (as a digest of its blind index, never the value).

// accepted reports an accepted message of device d holding obs.
func (s *Service) accepted(ctx context.Context, d vitalgate.Device, obs ...*fhir.Observation) {
	if s.Signals == nil {
		return
	}
	now := s.now()
	src := vitalgate.RequestInfoFrom(ctx).RemoteIP
	s.Signals.Emit(detect.Signal{Kind: detect.KindAccepted, At: now, Source: src, Device: d.ID, Site: d.Site, Model: d.Model,
		Skew: skew(now, obs)})
	for _, o := range obs {
		if o == nil {
			continue
		}
		s.reading(now, d, o.Code, o.ValueQuantity)
		for _, c := range o.Component {
			s.reading(now, d, c.Code, c.ValueQuantity)
		}
	}
}

// resend reports an observation the device sent again (stored before, the very same).
func (s *Service) resend(ctx context.Context, d vitalgate.Device) {
	if s.Signals == nil {
		return
	}
	s.Signals.Emit(detect.Signal{Kind: detect.KindResend, At: s.now(), Source: vitalgate.RequestInfoFrom(ctx).RemoteIP,
		Device: d.ID, Site: d.Site, Model: d.Model})
}

// skew is how far the newest effective time of obs is ahead of now (the device's clock
// against the server's; negative for readings sent late), 0 when none has one.
func skew(now time.Time, obs []*fhir.Observation) time.Duration {
	var newest time.Time
	for _, o := range obs {
		if o == nil {
			continue
		}
		if t, ok := o.EffectiveTime(); ok && t.After(newest) {
			newest = t
		}
	}
	if newest.IsZero() {
		return 0
	}
	return newest.Sub(now)
}

// reading reports one numeric reading under its LOINC code.
func (s *Service) reading(now time.Time, d vitalgate.Device, code *fhir.CodeableConcept, q *fhir.Quantity) {
	if code == nil || q == nil || q.Value == "" {
		return
	}
	v, err := q.Value.Float64()
	if err != nil {
		return
	}
	for _, c := range code.Coding {
		if c.System == vitals.SystemLOINC && c.Code != "" {
			s.Signals.Emit(detect.Signal{Kind: detect.KindValue, At: now, Device: d.ID, Site: d.Site, Model: d.Model, Code: c.Code, Value: v})
			return
		}
	}
}

// acceptedBundle reports the stored observations of a Bundle as one accepted message.
func (s *Service) acceptedBundle(ctx context.Context, d vitalgate.Device, b *fhir.Bundle, res BundleResult) {
	if s.Signals == nil || b == nil {
		return
	}
	var obs []*fhir.Observation
	for i, e := range res.Entries {
		if e.Err == nil && !e.Created.Existing && i < len(b.Entry) {
			obs = append(obs, b.Entry[i].Resource)
		}
	}
	if len(obs) > 0 {
		s.accepted(ctx, d, obs...)
	}
}

// refusal reports a refused device message (agentType device only).
func (s *Service) refusal(ctx context.Context, agentType, deviceID, site string, err error) {
	if s.Signals == nil || err == nil || agentType != "device" {
		return
	}
	if c := vitalgate.ErrorCode(err); c == vitalgate.EUNAVAILABLE || c == vitalgate.EINTERNAL || c == vitalgate.ETHROTTLED {
		return // the server's state, not the device's behaviour
	}
	s.Signals.Emit(detect.Signal{Kind: detect.KindRefusal, At: s.now(), Source: vitalgate.RequestInfoFrom(ctx).RemoteIP, Device: deviceID,
		Site: site, Reason: refusalDesc(err)})
}

// unknownPatient reports an HL7 patient identifier that names no Patient of the device's
// site: Subject is a digest of the identifier's keyed blind index, so that distinct
// identifiers can be counted and none can be read back.
func (s *Service) unknownPatient(ctx context.Context, d vitalgate.Device, index []byte) {
	if s.Signals == nil {
		return
	}
	s.Signals.Emit(detect.Signal{Kind: detect.KindPatientRefused, At: s.now(), Source: vitalgate.RequestInfoFrom(ctx).RemoteIP,
		Device: d.ID, Site: d.Site, Model: d.Model, Reason: "forbidden: PID-3", Subject: hex.EncodeToString(index[:min(len(index), 8)])})
}
