package evidence

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
)

//go:embed catalogue.json
var catalogueJSON []byte

//go:embed threats.json
var threatsJSON []byte

//go:embed mds2.json
var mds2JSON []byte

// Requirement is one FDA control category or HIPAA 164.312 standard or implementation
// specification.
type Requirement struct {
	ID        string `json:"id"`
	Framework string `json:"framework"` // "FDA" or "HIPAA"
	Ref       string `json:"ref"`       // e.g. "164.312(a)(2)(i)"
	Title     string `json:"title"`
}

// Control is one security control of the catalogue: what Vitalgate implements, the
// requirements it meets and the tests that prove it, or, when Gap is set, what is missing.
type Control struct {
	ID           string   `json:"id"`
	Title        string   `json:"title"`
	Implements   string   `json:"implements"`
	Requirements []string `json:"requirements"`
	Tests        []string `json:"tests,omitempty"` // "pkg.TestName", pkg relative to the module
	Gap          string   `json:"gap,omitempty"`   // set: not built; the row is a gap, not a claim
}

// Catalogue is the requirements and the controls that meet them.
type Catalogue struct {
	Requirements []Requirement `json:"requirements"`
	Controls     []Control     `json:"controls"`
}

// Interface is one interface of the threat model: which listener, and for HTTPS which
// authentication kind and path prefix, its routes have.
type Interface struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	Listener   string `json:"listener"`
	Auth       string `json:"auth,omitempty"`
	PathPrefix string `json:"path_prefix,omitempty"`
}

// Threat is one STRIDE threat against an interface and how Vitalgate meets it.
type Threat struct {
	Interface  string   `json:"interface"`
	STRIDE     string   `json:"stride"`
	Threat     string   `json:"threat"`
	Mitigation string   `json:"mitigation"`
	Controls   []string `json:"controls"`
}

// ThreatModel is the interfaces and their threats.
type ThreatModel struct {
	Interfaces []Interface `json:"interfaces"`
	Threats    []Threat    `json:"threats"`
}

// MDS2Question is one question of the MDS2 form: answered either by a fixed Answer or from
// the state of Control ("No" while the control is a gap, "Yes" otherwise).
type MDS2Question struct {
	ID        string `json:"id"`
	Section   string `json:"section"`
	Question  string `json:"question"`
	Answer    string `json:"answer,omitempty"`
	Control   string `json:"control,omitempty"`
	Note      string `json:"note,omitempty"`
	NoteIfGap string `json:"note_if_gap,omitempty"`
}

// MDS2Form is the questions the MDS2 output answers.
type MDS2Form struct {
	Edition   string         `json:"edition"`
	Note      string         `json:"note"`
	Questions []MDS2Question `json:"questions"`
}

// strictJSON decodes data into v, refusing unknown fields.
func strictJSON(name string, data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("evidence: %s: %w", name, err)
	}
	return nil
}

// LoadCatalogue returns the built-in catalogue, checked: unique ids, every control names
// known requirements, has tests or a gap (not both), and every requirement is met by at
// least one control.
func LoadCatalogue() (Catalogue, error) {
	var c Catalogue
	if err := strictJSON("catalogue.json", catalogueJSON, &c); err != nil {
		return c, err
	}
	reqs := map[string]bool{}
	for _, r := range c.Requirements {
		if r.ID == "" || reqs[r.ID] {
			return c, fmt.Errorf("evidence: catalogue: requirement id %q empty or repeated", r.ID)
		}
		reqs[r.ID] = true
	}
	met := map[string]bool{}
	ctrls := map[string]bool{}
	for _, k := range c.Controls {
		switch {
		case k.ID == "" || ctrls[k.ID]:
			return c, fmt.Errorf("evidence: catalogue: control id %q empty or repeated", k.ID)
		case (k.Gap == "") == (len(k.Tests) == 0):
			return c, fmt.Errorf("evidence: catalogue: control %s needs tests or a gap, not both", k.ID)
		case len(k.Requirements) == 0:
			return c, fmt.Errorf("evidence: catalogue: control %s meets no requirement", k.ID)
		}
		ctrls[k.ID] = true
		for _, r := range k.Requirements {
			if !reqs[r] {
				return c, fmt.Errorf("evidence: catalogue: control %s names unknown requirement %q", k.ID, r)
			}
			met[r] = true
		}
	}
	for _, r := range c.Requirements {
		if !met[r.ID] {
			return c, fmt.Errorf("evidence: catalogue: requirement %s (%s) has no control row", r.ID, r.Ref)
		}
	}
	return c, nil
}

// LoadThreatModel returns the built-in threat model, checked against the catalogue's
// control ids.
func LoadThreatModel(c Catalogue) (ThreatModel, error) {
	var tm ThreatModel
	if err := strictJSON("threats.json", threatsJSON, &tm); err != nil {
		return tm, err
	}
	ifaces := map[string]bool{}
	for _, i := range tm.Interfaces {
		ifaces[i.ID] = true
	}
	ctrls := map[string]bool{}
	for _, k := range c.Controls {
		ctrls[k.ID] = true
	}
	for _, t := range tm.Threats {
		if !ifaces[t.Interface] {
			return tm, fmt.Errorf("evidence: threats: unknown interface %q", t.Interface)
		}
		if !validSTRIDE[t.STRIDE] {
			return tm, fmt.Errorf("evidence: threats: %q is not a STRIDE category", t.STRIDE)
		}
		for _, k := range t.Controls {
			if !ctrls[k] {
				return tm, fmt.Errorf("evidence: threats: unknown control %q", k)
			}
		}
	}
	return tm, nil
}

var validSTRIDE = map[string]bool{"Spoofing": true, "Tampering": true, "Repudiation": true,
	"Information disclosure": true, "Denial of service": true, "Elevation of privilege": true}

// LoadMDS2 returns the built-in MDS2 questions, checked against the catalogue.
func LoadMDS2(c Catalogue) (MDS2Form, error) {
	var f MDS2Form
	if err := strictJSON("mds2.json", mds2JSON, &f); err != nil {
		return f, err
	}
	ctrls := map[string]bool{}
	for _, k := range c.Controls {
		ctrls[k.ID] = true
	}
	for _, q := range f.Questions {
		if (q.Answer == "") == (q.Control == "") {
			return f, fmt.Errorf("evidence: mds2: %s needs an answer or a control, not both", q.ID)
		}
		if q.Control != "" && !ctrls[q.Control] {
			return f, fmt.Errorf("evidence: mds2: %s names unknown control %q", q.ID, q.Control)
		}
	}
	return f, nil
}
