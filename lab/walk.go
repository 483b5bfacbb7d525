package lab

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
)

// group is one OBR and what belongs to it.
type group struct {
	seq       int // OBR occurrence
	obr       *hl7v2.Segment
	key       fhir.Identifier // order key: system and order number
	keyType   string          // FILL (OBR-3), PLAC (OBR-2) or "" (the specimen id)
	time      timeValue       // OBR-7
	code      *fhir.CodeableConcept
	specimens []int // indexes in Result.Specimens
	results   []int // indexes in Result.Results
	keys      map[string]int
	trailing  bool // OUL: no SPM before the OBR, so the SPM segments after it are its own
}

var (
	subIDRE = regexp.MustCompile(`^[A-Za-z0-9.\-_]{1,32}$`)
	orderRE = regexp.MustCompile(`^[\x21-\x7e]([\x20-\x7e]{0,126}[\x21-\x7e])?$`)
)

// walk maps the segments after PID: groups, results, specimens, reports.
func (m *mapper) walk() error {
	counts := map[string]int{}
	var cur, trailing *group
	var groups []*group
	curSpec := -1
	lastEntry := -1 // index in Result.Results of the last OBX mapped, for PRT
	for i := range m.msg.Segments {
		seg := &m.msg.Segments[i]
		counts[seg.ID]++
		seq := counts[seg.ID]
		switch seg.ID {
		case "SPM":
			idx, err := m.specimen(seg, seq)
			if err != nil {
				return err
			}
			lastEntry = -1
			if !m.oul {
				if cur != nil {
					cur.specimens = append(cur.specimens, idx)
				}
				continue
			}
			if cur != nil && cur.trailing {
				trailing = cur
			}
			if trailing != nil {
				trailing.specimens = append(trailing.specimens, idx)
			}
			cur, curSpec = nil, idx
		case "OBR":
			g, err := m.order(seg, seq, curSpec)
			if err != nil {
				return err
			}
			groups = append(groups, g)
			cur, trailing, lastEntry = g, nil, -1
		case "OBX":
			lastEntry = -1
			if cur == nil {
				m.skip(seq, 0, "an OBX under no OBR (a specimen or message-level observation) is not mapped")
				continue
			}
			idx, err := m.obx(seg, seq, cur, len(groups)-1)
			if err != nil {
				return err
			}
			lastEntry = idx
		case "PRT":
			if lastEntry >= 0 && strings.EqualFold(strings.TrimSpace(seg.Field(4).Value()), "EQUIP") {
				e := &m.res.Results[lastEntry]
				f := seg.Field(10)
				for r := 1; r <= len(f); r++ {
					e.Equipment = m.addEquipment(e.Equipment, f.Rep(r))
				}
			}
		}
	}
	for _, g := range groups {
		if err := m.report(g); err != nil {
			return err
		}
	}
	return nil
}

func (m *mapper) skip(seq, field int, format string, args ...any) {
	m.res.Skipped = append(m.res.Skipped, Skipped{Loc: loc("OBX", seq, field, 0), Reason: sprintf(format, args...)})
}

// eiKey returns the identifier of an entity identifier (EI: id, namespace, universal id,
// type) read from the components (or subcomponents) given, with def as the system when it
// names no authority.
func (m *mapper) eiKey(id, ns, uid, typ, def string) fhir.Identifier {
	sys := hl7v2.IdentifierSystem(HD{Namespace: ns, UniversalID: uid, UniversalIDType: typ}, m.opt.Authorities)
	if sys == "" {
		sys = def
	}
	return fhir.Identifier{System: sys, Value: strings.TrimSpace(id)}
}

func present(s string) bool { s = strings.TrimSpace(s); return s != "" && s != `""` }

// order starts the group of an OBR: its key (OBR-3, else OBR-2, else in an OUL the specimen
// id of the group), code (OBR-4) and time (OBR-7).
func (m *mapper) order(seg *hl7v2.Segment, seq, curSpec int) (*group, error) {
	g := &group{seq: seq, obr: seg, keys: map[string]int{}}
	def := "urn:vitalgate:device:" + m.opt.DeviceID + ":lab"
	var keyLoc hl7v2.Location
	for _, f := range []int{3, 2} {
		r := seg.Field(f).Rep(1)
		if present(r.Comp(1).Value()) {
			g.key = m.eiKey(r.Comp(1).Value(), r.Comp(2).Value(), r.Comp(3).Value(), r.Comp(4).Value(), def)
			keyLoc = loc("OBR", seq, f, 1)
			g.keyType = map[int]string{3: "FILL", 2: "PLAC"}[f]
			break
		}
	}
	if m.oul {
		if curSpec >= 0 {
			g.specimens = []int{curSpec}
			if g.key.Value == "" {
				s := m.res.Specimens[curSpec]
				if len(s.Identifier) > 0 && s.Identifier[0].Use == "official" {
					g.key = s.Identifier[0]
					keyLoc = loc("SPM", 0, 2, 0)
				}
			}
		} else {
			g.trailing = true
		}
	}
	if g.key.Value == "" {
		return nil, errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("OBR", seq, 3, 1),
			"an order number is required: the filler order number (OBR-3), the placer order number (OBR-2) or, in an OUL, the specimen id (SPM-2)")
	}
	if !orderRE.MatchString(g.key.Value) {
		return nil, errAt(vitalgate.EINVALID, hl7v2.CondDataType, keyLoc, "an order number must be at most 128 printable ASCII characters")
	}
	g.key.Use = ""
	code, _, err := m.concept(seg.Field(4).Rep(1), loc("OBR", seq, 4, 0))
	if err != nil {
		return nil, err
	}
	if code == nil {
		return nil, errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("OBR", seq, 4, 1), "the universal service identifier (OBR-4) is required")
	}
	g.code = code
	if g.time, err = m.optTime(seg, 7, loc("OBR", seq, 7, 0)); err != nil {
		return nil, err
	}
	return g, nil
}

// reportStatusMap maps OBR-25 (HL7 table 0123) to diagnostic-report-status.
var reportStatusMap = map[string]string{
	"O": "registered", "I": "registered", "S": "registered", "A": "partial", "R": "partial",
	"P": "preliminary", "C": "corrected", "F": "final", "X": "cancelled",
}

// report builds the DiagnosticReport of g once all its results and specimens are known,
// and points the results at the group's specimen.
func (m *mapper) report(g *group) error {
	key := fhir.Identifier{Use: "official", System: g.key.System, Value: g.key.Value}
	switch g.keyType {
	case "FILL":
		key.Type = idType("FILL", "Filler Identifier")
	case "PLAC":
		key.Type = idType("PLAC", "Placer Identifier")
	}
	r := &DiagnosticReport{
		Identifier: []fhir.Identifier{key},
		Category:   []fhir.CodeableConcept{{Coding: []fhir.Coding{{System: DiagnosticServiceSystem, Code: "LAB", Display: "Laboratory"}}}},
		Code:       g.code,
		Subject:    &fhir.Reference{Reference: "Patient/" + m.res.PatientID},
	}
	if p := g.obr.Field(2).Rep(1); g.keyType == "FILL" && present(p.Comp(1).Value()) {
		k := m.eiKey(p.Comp(1).Value(), p.Comp(2).Value(), p.Comp(3).Value(), p.Comp(4).Value(), "urn:vitalgate:device:"+m.opt.DeviceID+":placer")
		if orderRE.MatchString(k.Value) {
			k.Use, k.Type = "usual", idType("PLAC", "Placer Identifier")
			r.Identifier = append(r.Identifier, k)
		}
	}
	st := strings.TrimSpace(g.obr.Field(25).Value())
	if st != "" {
		s, ok := reportStatusMap[st]
		if !ok {
			return errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, loc("OBR", g.seq, 25, 0), "result status %s is not in HL7 table 0123", quote(st))
		}
		r.Status = s
	} else {
		r.Status = m.derivedStatus(g)
	}
	r.EffectiveDateTime = g.time.fhir
	issued, err := m.optTime(g.obr, 22, loc("OBR", g.seq, 22, 0))
	if err != nil {
		return err
	}
	if issued.instant() {
		r.Issued = issued.fhir
	}
	for _, s := range g.specimens {
		r.Specimen = append(r.Specimen, specimenRef(m.res.Specimens[s]))
	}
	for _, i := range g.results {
		e := &m.res.Results[i]
		key := e.Key
		r.Result = append(r.Result, fhir.Reference{Type: "Observation", Identifier: &fhir.Identifier{System: key.System, Value: key.Value}})
		if len(g.specimens) > 0 {
			ref := specimenRef(m.res.Specimens[g.specimens[0]])
			e.Observation.Specimen = &ref
			if err := ValidateObservation(e.Observation, m.now); err != nil {
				return hl7v2.WrapError(err, hl7v2.CondDataType, e.Loc)
			}
		}
	}
	if err := r.Validate(); err != nil {
		return hl7v2.WrapError(err, hl7v2.CondDataType, loc("OBR", g.seq, 0, 0))
	}
	m.res.Reports = append(m.res.Reports, r)
	return nil
}

// derivedStatus is the report status when OBR-25 is empty: from its results.
func (m *mapper) derivedStatus(g *group) string {
	if len(g.results) == 0 {
		return "registered"
	}
	all := func(s ...string) bool {
		for _, i := range g.results {
			if !contains(s, m.res.Results[i].Observation.Status) {
				return false
			}
		}
		return true
	}
	switch {
	case all("cancelled"):
		return "cancelled"
	case all("entered-in-error"):
		return "entered-in-error"
	case all("final", "cancelled", "entered-in-error"):
		return "final"
	case all("final", "corrected", "amended", "cancelled", "entered-in-error"):
		return "corrected"
	}
	return "preliminary"
}

func specimenRef(s *Specimen) fhir.Reference {
	id := s.Identifier[0]
	return fhir.Reference{Type: "Specimen", Identifier: &fhir.Identifier{System: id.System, Value: id.Value}}
}

func idType(code, display string) *fhir.CodeableConcept {
	return &fhir.CodeableConcept{Coding: []fhir.Coding{{System: IdentifierTypeSystem, Code: code, Display: display}}}
}

// maxEquipment bounds the instruments kept per result (OBX-18 and PRT-10 repeat).
const maxEquipment = 16

// addEquipment adds the equipment named by the EI rep to list, unless already there or the
// list is full.
func (m *mapper) addEquipment(list []fhir.Identifier, r hl7v2.Rep) []fhir.Identifier {
	if len(list) >= maxEquipment || !present(r.Comp(1).Value()) {
		return list
	}
	k := m.eiKey(r.Comp(1).Value(), r.Comp(2).Value(), r.Comp(3).Value(), r.Comp(4).Value(), "urn:vitalgate:device:"+m.opt.DeviceID+":equipment")
	if !orderRE.MatchString(k.Value) {
		return list
	}
	for _, x := range list {
		if x.System == k.System && x.Value == k.Value {
			return list
		}
	}
	return append(list, k)
}

// specimen maps an SPM segment to a Specimen and returns its index in Result.Specimens.
func (m *mapper) specimen(seg *hl7v2.Segment, seq int) (int, error) {
	s := &Specimen{Subject: &fhir.Reference{Reference: "Patient/" + m.res.PatientID}}
	f2 := seg.Field(2).Rep(1)
	for _, c := range []int{1, 2} { // placer assigned, else filler assigned (EIP)
		ei := f2.Comp(c)
		if present(ei.Sub(1)) {
			k := m.eiKey(ei.Sub(1), ei.Sub(2), ei.Sub(3), ei.Sub(4), "urn:vitalgate:device:"+m.opt.DeviceID+":specimen")
			if !orderRE.MatchString(k.Value) {
				return 0, errAt(vitalgate.EINVALID, hl7v2.CondDataType, loc("SPM", seq, 2, c), "a specimen id must be at most 128 printable ASCII characters")
			}
			k.Use = "official"
			s.Identifier = []fhir.Identifier{k}
			break
		}
	}
	if len(s.Identifier) == 0 {
		s.Identifier = []fhir.Identifier{{Use: "secondary", System: m.opt.IdentifierSystem,
			Value: m.res.MessageControlID + "/SPM/" + strconv.Itoa(seq)}}
	}
	var err error
	if s.Type, _, err = m.concept(seg.Field(4).Rep(1), loc("SPM", seq, 4, 0)); err != nil {
		return 0, err
	}
	col := &SpecimenCollection{}
	if col.Method, _, err = m.concept(seg.Field(7).Rep(1), loc("SPM", seq, 7, 0)); err != nil {
		return 0, err
	}
	if col.BodySite, _, err = m.concept(seg.Field(8).Rep(1), loc("SPM", seq, 8, 0)); err != nil {
		return 0, err
	}
	dr := seg.Field(17).Rep(1)
	var start, end timeValue
	if ts := dr.Comp(1).Sub(1); present(ts) {
		if start, err = m.parseTime(ts, loc("SPM", seq, 17, 1)); err != nil {
			return 0, err
		}
	}
	if ts := dr.Comp(2).Sub(1); present(ts) {
		if end, err = m.parseTime(ts, loc("SPM", seq, 17, 2)); err != nil {
			return 0, err
		}
	}
	switch {
	case end.fhir != "" && start.fhir != "" && end.t.Before(start.t):
		return 0, errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondDataType, loc("SPM", seq, 17, 2), "the collection ends before it starts")
	case end.fhir != "":
		col.CollectedPeriod = &fhir.Period{Start: start.fhir, End: end.fhir}
	default:
		col.CollectedDateTime = start.fhir
	}
	if *col != (SpecimenCollection{}) {
		s.Collection = col
	}
	recv, err := m.optTime(seg, 18, loc("SPM", seq, 18, 0))
	if err != nil {
		return 0, err
	}
	s.ReceivedTime = recv.fhir
	switch strings.TrimSpace(seg.Field(20).Value()) {
	case "Y":
		s.Status = "available"
	case "N":
		s.Status = "unavailable"
	}
	if present(seg.Field(21).Value()) {
		s.Status = "unsatisfactory"
	}
	f24 := seg.Field(24)
	for r := 1; r <= len(f24) && r <= 8; r++ {
		c, _, err := m.concept(f24.Rep(r), hl7v2.Location{Segment: "SPM", Seq: seq, Field: 24, Rep: r})
		if err != nil {
			return 0, err
		}
		if c != nil {
			s.Condition = append(s.Condition, *c)
		}
	}
	if err := s.Validate(); err != nil {
		return 0, hl7v2.WrapError(err, hl7v2.CondDataType, loc("SPM", seq, 0, 0))
	}
	m.res.Specimens = append(m.res.Specimens, s)
	m.specTimes = append(m.specTimes, start)
	return len(m.res.Specimens) - 1, nil
}
