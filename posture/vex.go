package posture

import (
	"encoding/json"
	"strings"

	"github.com/vitalgate/vitalgate"
)

// MaxVEXBytes bounds a VEX document.
const MaxVEXBytes = 16 << 20

// VEX states (OpenVEX status names; CycloneDX analysis states are mapped onto them).
const (
	VEXNotAffected        = "not_affected"
	VEXAffected           = "affected"
	VEXFixed              = "fixed"
	VEXUnderInvestigation = "under_investigation"
)

// Statement is one VEX statement of a maker about a vulnerability in its product: the
// vulnerability (an id or alias), the components it is about (purls or names; none: the
// whole product), the status, and for not_affected its justification.
type Statement struct {
	Vulnerability string   `json:"vulnerability"`
	Components    []string `json:"components,omitempty"`
	Status        string   `json:"status"`
	Justification string   `json:"justification,omitempty"`
	Detail        string   `json:"detail,omitempty"`
}

// ParseVEX parses a CycloneDX VEX (a BOM whose vulnerabilities carry an analysis) or an
// OpenVEX document. A not_affected statement needs its justification (or, in OpenVEX, an
// impact statement), as both specifications require. EINVALID otherwise.
func ParseVEX(data []byte) ([]Statement, error) {
	if len(data) > MaxVEXBytes {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the VEX document is over %d MiB", MaxVEXBytes>>20)
	}
	var probe struct {
		Context   string          `json:"@context"`
		BOMFormat string          `json:"bomFormat"`
		Stmts     json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the VEX document is not JSON: %v", err)
	}
	var (
		out []Statement
		err error
	)
	switch {
	case strings.Contains(probe.Context, "openvex"):
		out, err = parseOpenVEX(data)
	case probe.BOMFormat == "CycloneDX":
		out, err = parseCycloneDXVEX(data)
	default:
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the VEX document is neither OpenVEX (@context) nor CycloneDX (bomFormat)")
	}
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the VEX document holds no statement")
	}
	for _, s := range out {
		if s.Vulnerability == "" {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "a VEX statement names no vulnerability")
		}
		if s.Status == VEXNotAffected && s.Justification == "" && s.Detail == "" {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "the not_affected statement on %s gives no justification", s.Vulnerability)
		}
	}
	return out, nil
}

func parseOpenVEX(data []byte) ([]Statement, error) {
	var d struct {
		Statements []struct {
			Vulnerability struct {
				ID      string   `json:"@id"`
				Name    string   `json:"name"`
				Aliases []string `json:"aliases"`
			} `json:"vulnerability"`
			Products []struct {
				ID            string `json:"@id"`
				Subcomponents []struct {
					ID string `json:"@id"`
				} `json:"subcomponents"`
			} `json:"products"`
			Status          string `json:"status"`
			Justification   string `json:"justification"`
			ImpactStatement string `json:"impact_statement"`
			ActionStatement string `json:"action_statement"`
		} `json:"statements"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the OpenVEX document does not parse: %v", err)
	}
	var out []Statement
	for _, s := range d.Statements {
		switch s.Status {
		case VEXNotAffected, VEXAffected, VEXFixed, VEXUnderInvestigation:
		default:
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "OpenVEX status %q is not not_affected, affected, fixed or under_investigation", s.Status)
		}
		st := Statement{Vulnerability: s.Vulnerability.Name, Status: s.Status, Justification: s.Justification, Detail: s.ImpactStatement}
		if st.Vulnerability == "" {
			st.Vulnerability = s.Vulnerability.ID
		}
		if st.Detail == "" {
			st.Detail = s.ActionStatement
		}
		for _, p := range s.Products {
			for _, c := range p.Subcomponents {
				st.Components = append(st.Components, c.ID)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// cdxStates maps CycloneDX analysis states onto the VEX states.
var cdxStates = map[string]string{
	"not_affected": VEXNotAffected, "false_positive": VEXNotAffected, "exploitable": VEXAffected,
	"resolved": VEXFixed, "resolved_with_pedigree": VEXFixed, "in_triage": VEXUnderInvestigation,
}

func parseCycloneDXVEX(data []byte) ([]Statement, error) {
	var d struct {
		Components []struct {
			BOMRef string `json:"bom-ref"`
			PURL   string `json:"purl"`
			Name   string `json:"name"`
		} `json:"components"`
		Vulnerabilities []struct {
			ID       string `json:"id"`
			Analysis struct {
				State         string `json:"state"`
				Justification string `json:"justification"`
				Detail        string `json:"detail"`
			} `json:"analysis"`
			Affects []struct {
				Ref string `json:"ref"`
			} `json:"affects"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the CycloneDX VEX does not parse: %v", err)
	}
	refs := map[string]string{}
	for _, c := range d.Components {
		switch {
		case c.PURL != "":
			refs[c.BOMRef] = c.PURL
		case c.Name != "":
			refs[c.BOMRef] = c.Name
		}
	}
	var out []Statement
	for _, v := range d.Vulnerabilities {
		if v.Analysis.State == "" {
			continue // a vulnerability without an analysis states nothing
		}
		state, ok := cdxStates[v.Analysis.State]
		if !ok {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "CycloneDX analysis state %q is unknown", v.Analysis.State)
		}
		st := Statement{Vulnerability: v.ID, Status: state, Justification: v.Analysis.Justification, Detail: v.Analysis.Detail}
		for _, a := range v.Affects {
			ref := a.Ref
			if r, ok := refs[ref]; ok {
				ref = r
			} else if i := strings.Index(ref, "#"); i >= 0 && strings.HasPrefix(ref, "urn:cdx:") {
				ref = ref[i+1:] // a BOM-Link to a component of another BOM: its bom-ref
			}
			if ref != "" && !strings.HasPrefix(ref, "urn:cdx:") {
				st.Components = append(st.Components, ref)
			}
		}
		out = append(out, st)
	}
	return out, nil
}
