package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/lab"
)

// LabStored is what one laboratory message became: a Created per Observation (in message
// order), DiagnosticReport and Specimen. Created.Existing is set for a resource stored
// before exactly so (a retransmission); Created.Version above 1 is a new version of one
// stored before under the same key (a correction, a final after a preliminary result, a
// cancellation).
type LabStored struct {
	Observations, Reports, Specimens []Created
}

// labMessage maps, validates, binds and stores a laboratory result message (HL7Message).
func (s *Service) labMessage(ctx context.Context, deviceID string, msg *hl7v2.Message, opt HL7Options) (LabStored, error) {
	res, err := lab.Map(msg, lab.Options{
		DeviceID: deviceID, Authorities: s.Authorities, AcceptUnknownCodes: s.LabAcceptUnknownCodes,
		Now: opt.Now, Versions: opt.Versions, ProcessingIDs: opt.ProcessingIDs, MaxObservations: s.MaxObservations(),
		ResolvePatient: func(p lab.PatientIdentifier) (string, error) {
			return s.ResolvePatient(ctx, deviceID, p.Value, p.Assigner)
		},
	})
	if err != nil {
		return LabStored{}, err
	}
	if len(res.Results) == 0 {
		loc := hl7v2.Location{Segment: "OBX", Seq: 1, Field: 3}
		if len(res.Skipped) > 0 {
			loc = res.Skipped[0].Loc
		}
		return LabStored{}, hl7v2.NewError(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, loc,
			"the message holds no laboratory result this server accepts (a LOINC-coded OBX with a result status)")
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	b, err := s.newBinder(ctx, deviceID, now)
	if err != nil {
		return LabStored{}, err
	}
	// Every result is validated and bound to the patient first: the reports and specimens
	// are that patient's too.
	var dev vitalgate.Device
	keys := map[string]bool{}
	for i := range res.Results {
		e := &res.Results[i]
		if err := lab.ValidateObservation(e.Observation, now); err != nil {
			return LabStored{}, labError(err, e.Loc, res.PatientLoc)
		}
		d, err := b.bind(ctx, e.Observation, "Observation", nil)
		if err != nil {
			return LabStored{}, labError(err, e.Loc, res.PatientLoc)
		}
		if i == 0 {
			dev = d
		} else if !bytes.Equal(d.PatientIndex, dev.PatientIndex) {
			return LabStored{}, hl7v2.NewError(vitalgate.EUNPROCESSABLE, hl7v2.CondDataType, e.Loc,
				"the results of one message must belong to one patient (this device was reassigned between them); send them in separate messages")
		}
		if k := e.Key.System + "|" + e.Key.Value; keys[k] {
			return LabStored{}, hl7v2.NewError(vitalgate.EUNPROCESSABLE, hl7v2.CondDuplicateKey, e.Loc,
				"this OBX repeats a result of the same message (the same order number, OBX-3 and OBX-4)")
		} else {
			keys[k] = true
		}
	}
	w := labWriter{s: s, dev: dev, now: now, ids: map[string]string{}}
	var out LabStored
	for _, sp := range res.Specimens {
		k := refKey("Specimen", sp.Identifier[0])
		if _, dup := w.ids[k]; dup {
			continue // named again by another order: the same specimen
		}
		if err := sp.Validate(); err != nil {
			return LabStored{}, err
		}
		eff := firstTime(now, collected(sp), sp.ReceivedTime)
		c, err := w.keep(ctx, "Specimen", sp.Identifier[0], sp.Identifier, eff, nil, &sp.Meta, &sp.ID, sp.Marshal)
		if err != nil {
			return LabStored{}, err
		}
		out.Specimens = append(out.Specimens, c)
	}
	for i := range res.Results {
		e := &res.Results[i]
		o := e.Observation
		w.link(o.Specimen)
		var codes []string
		for _, c := range o.Codes() {
			codes = append(codes, c.System+"|"+c.Code, c.Code)
		}
		eff, _ := o.EffectiveTime()
		c, err := w.keep(ctx, "Observation", e.Key, o.Identifier, eff, labCodes(codes), &o.Meta, &o.ID, o.Marshal)
		if err != nil {
			return LabStored{}, labError(err, e.Loc, res.PatientLoc)
		}
		out.Observations = append(out.Observations, c)
	}
	for _, r := range res.Reports {
		for i := range r.Result {
			w.link(&r.Result[i])
		}
		for i := range r.Specimen {
			w.link(&r.Specimen[i])
		}
		if err := r.Validate(); err != nil {
			return LabStored{}, err
		}
		var codes []string
		if r.Code != nil {
			for _, c := range r.Code.Coding {
				codes = append(codes, c.System+"|"+c.Code, c.Code)
			}
		}
		eff := firstTime(now, r.EffectiveDateTime, r.Issued)
		w.merge = func(stored []byte) error { return mergeReport(r, stored) }
		c, err := w.keep(ctx, "DiagnosticReport", r.Identifier[0], r.Identifier, eff, codes, &r.Meta, &r.ID, r.Marshal)
		w.merge = nil
		if err != nil {
			return LabStored{}, err
		}
		out.Reports = append(out.Reports, c)
	}
	if len(w.batch) == 0 {
		return out, nil // every one was a retransmission: the stored ones
	}
	if err := s.Resources.CreateResources(ctx, w.batch, s.auditCreate(ctx, "hl7", audit.AgentDevice, deviceID, "device", b.resolved("HL7 PID-3"), w.batch)...); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return LabStored{}, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "another message about the same results was stored at the same moment; send this one again")
		}
		return LabStored{}, err
	}
	return out, nil
}

// labCodes is the search tokens of a laboratory Observation's codes: each code, and each
// code within the category laboratory (fhir.CategoryToken), and the category alone.
func labCodes(codes []string) []string {
	out := append([]string{}, codes...)
	out = append(out, fhir.CategoryToken(fhir.CategoryLaboratory, ""))
	for _, c := range codes {
		out = append(out, fhir.CategoryToken(fhir.CategoryLaboratory, c))
	}
	return out
}

// labError locates an error about the Observation of the OBX at obx (pid: where PID-3 was
// read) unless it is located already.
func labError(err error, obx, pid hl7v2.Location) error {
	var he *hl7v2.Error
	if errors.As(err, &he) {
		return err
	}
	return hl7v2.WrapError(err, "", fieldLocation(vitalgate.ErrorField(err), obx, pid))
}

func collected(sp *lab.Specimen) string {
	if c := sp.Collection; c != nil {
		if c.CollectedDateTime != "" {
			return c.CollectedDateTime
		}
		if p := c.CollectedPeriod; p != nil {
			return firstTimeString(p.Start, p.End)
		}
	}
	return ""
}

func firstTimeString(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// firstTime returns the first of the FHIR dateTimes that parses, else def.
func firstTime(def time.Time, ss ...string) time.Time {
	for _, s := range ss {
		if t, ok := fhir.ParseDateTime(s); ok {
			return t.UTC()
		}
	}
	return def
}

func refKey(typ string, id fhir.Identifier) string { return typ + "|" + id.System + "|" + id.Value }

// labWriter stores the resources of one laboratory message, each under its key.
type labWriter struct {
	s     *Service
	dev   vitalgate.Device // bound to the message's patient
	now   time.Time
	ids   map[string]string // refKey → server id, of the resources kept so far
	batch []vitalgate.SealedResource
	// merge, when set, takes into the resource being kept what the stored version of it
	// holds that the new one must keep.
	merge func(stored []byte) error
}

// mergeReport keeps in a new version of a DiagnosticReport the results and specimens of the
// stored version that the new message does not name again: a correction or cancellation
// message names only the results it changes, and the report still groups the others.
func mergeReport(r *lab.DiagnosticReport, stored []byte) error {
	var old lab.DiagnosticReport
	if err := json.Unmarshal(stored, &old); err != nil {
		return vitalgate.Internal(err, "stored DiagnosticReport")
	}
	r.Result = mergeRefs(old.Result, r.Result)
	r.Specimen = mergeRefs(old.Specimen, r.Specimen)
	return nil
}

// mergeRefs returns the references of old, then those of add that old does not hold.
func mergeRefs(old, add []fhir.Reference) []fhir.Reference {
	key := func(r fhir.Reference) string {
		if r.Identifier != nil {
			return r.Identifier.System + "|" + r.Identifier.Value
		}
		return r.Reference
	}
	seen := map[string]bool{}
	out := make([]fhir.Reference, 0, len(old)+len(add))
	for _, r := range append(append([]fhir.Reference{}, old...), add...) {
		if k := key(r); !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

// link makes a reference by identifier to a resource of this message also a literal one
// ("Specimen/<id>"), so that a client can follow it.
func (w *labWriter) link(r *fhir.Reference) {
	if r == nil || r.Identifier == nil || r.Type == "" {
		return
	}
	if id, ok := w.ids[refKey(r.Type, *r.Identifier)]; ok {
		r.Reference = r.Type + "/" + id
	}
}

// keep prepares the resource of type typ whose key is key for the batch: a new resource, or
// the next version of the one stored under key for this patient, or nothing when the stored
// one is the very same (a retransmission). meta, id and marshal are the resource's.
func (w *labWriter) keep(ctx context.Context, typ string, key fhir.Identifier, idents []fhir.Identifier, eff time.Time,
	tokens []string, meta **fhir.Meta, id *string, marshal func() ([]byte, error)) (Created, error) {
	s, d := w.s, w.dev
	stamp := func(rid string, version int, updated time.Time) ([]byte, error) {
		m := &fhir.Meta{}
		if *meta != nil {
			c := **meta
			m = &c
		}
		m.VersionID, m.LastUpdated = strconv.Itoa(version), updated.UTC().Format(time.RFC3339Nano)
		m.Tag = SiteTag(m.Tag, d.Site)
		*meta, *id = m, rid
		body, err := marshal()
		if err != nil {
			return nil, vitalgate.Internal(err, "marshal "+typ)
		}
		return body, nil
	}
	var found vitalgate.SealedResource
	if s.Finder != nil {
		err := s.Finder.Resources(ctx, vitalgate.ResourceFilter{Site: d.Site, Type: typ, PatientIndex: d.PatientIndex,
			IdentifierIndex: s.Vault.IdentifierIndex(key.System + "|" + key.Value), Limit: 1},
			func(r vitalgate.SealedResource) error { found = r; return errFound })
		if err != nil && err != errFound {
			return Created{}, err
		}
	}
	rid, version := "", 1
	if found.ID != "" {
		stored, err := s.Vault.Open(ctx, found)
		if err != nil {
			return Created{}, err
		}
		if w.merge != nil {
			if err := w.merge(stored); err != nil {
				return Created{}, err
			}
		}
		again, err := stamp(found.ID, found.Version, found.LastUpdated)
		if err != nil {
			return Created{}, err
		}
		w.ids[refKey(typ, key)] = found.ID
		if bytes.Equal(again, stored) {
			return Created{Type: typ, ID: found.ID, Version: found.Version, LastUpdated: found.LastUpdated, Body: stored, Existing: true}, nil
		}
		rid, version = found.ID, found.Version+1
	} else {
		var err error
		if rid, err = NewID(w.now, s.rand()); err != nil {
			return Created{}, err
		}
	}
	w.ids[refKey(typ, key)] = rid
	body, err := stamp(rid, version, w.now)
	if err != nil {
		return Created{}, err
	}
	sealed, err := s.Vault.SealIn(ctx, d.Site, d.PatientIndex, typ, rid, version, body)
	if err != nil {
		return Created{}, err
	}
	var codes, ix [][]byte
	for _, t := range tokens {
		codes = append(codes, s.Vault.CodeIndex(t))
	}
	for _, ident := range idents {
		if identifies(ident) {
			ix = append(ix, s.Vault.IdentifierIndex(ident.System+"|"+ident.Value))
		}
	}
	w.batch = append(w.batch, vitalgate.SealedResource{Type: typ, ID: rid, Version: version, Site: d.Site,
		PatientIndex: d.PatientIndex, CodeIndexes: codes, IdentifierIndexes: ix,
		Effective: eff.UTC(), LastUpdated: w.now, Body: sealed})
	return Created{Type: typ, ID: rid, Version: version, LastUpdated: w.now, Body: body}, nil
}
