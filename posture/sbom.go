package posture

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/vitalgate/vitalgate"
)

// MaxSBOMBytes bounds an SBOM document.
const MaxSBOMBytes = 16 << 20

// maxComponents bounds the components of one SBOM (after flattening).
const maxComponents = 100_000

// maxDepth bounds the nesting of CycloneDX components.
const maxDepth = 64

// Component is one entry of an SBOM, flattened out of any nesting.
type Component struct {
	Ref     string `json:"ref,omitempty"` // bom-ref or SPDXID
	Name    string `json:"name"`          // as the SBOM names it (group/name for CycloneDX with a group)
	Version string `json:"version,omitempty"`
	PURL    string `json:"purl,omitempty"`
	CPE     string `json:"cpe,omitempty"`
	// Parent is the name of the component it is nested in ("" at the top).
	Parent string `json:"parent,omitempty"`
	// The FDA fields (premarket guidance §V.A.4.b): "" when the SBOM does not give them.
	Supplier     string `json:"supplier,omitempty"`
	SupportLevel string `json:"support_level,omitempty"`
	EndOfSupport string `json:"end_of_support,omitempty"`
}

// Missing lists what the component lacks, in plain words: "purl", "version", "supplier",
// "support level", "end-of-support date".
func (c Component) Missing() []string {
	var m []string
	if c.PURL == "" {
		if c.CPE == "" {
			m = append(m, "purl")
		} else {
			m = append(m, "purl (CPE only)")
		}
	}
	if c.Version == "" {
		m = append(m, "version")
	}
	if c.Supplier == "" {
		m = append(m, "supplier")
	}
	if c.SupportLevel == "" {
		m = append(m, "support level")
	}
	if c.EndOfSupport == "" {
		m = append(m, "end-of-support date")
	}
	return m
}

// SBOM is a parsed software bill of materials.
type SBOM struct {
	Format     string      `json:"format"` // "CycloneDX 1.6", "SPDX-2.3", ...
	Subject    string      `json:"subject,omitempty"`
	Components []Component `json:"components"`
	SHA256     string      `json:"sha256"` // of the document as given
}

// ParseSBOM parses a CycloneDX 1.5/1.6 JSON or SPDX 2.3 JSON document. Errors are EINVALID
// with what is wrong in plain words.
func ParseSBOM(data []byte) (SBOM, error) {
	if len(data) > MaxSBOMBytes {
		return SBOM{}, vitalgate.Errorf(vitalgate.EINVALID, "the SBOM is over %d MiB", MaxSBOMBytes>>20)
	}
	var probe struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		SPDXVersion string `json:"spdxVersion"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return SBOM{}, vitalgate.Errorf(vitalgate.EINVALID, "the SBOM is not JSON: %v", err)
	}
	sum := sha256.Sum256(data)
	var (
		s   SBOM
		err error
	)
	switch {
	case probe.BOMFormat == "CycloneDX":
		s, err = parseCycloneDX(data, probe.SpecVersion)
	case probe.SPDXVersion != "":
		s, err = parseSPDX(data, probe.SPDXVersion)
	default:
		return SBOM{}, vitalgate.Errorf(vitalgate.EINVALID, "the SBOM is neither CycloneDX (bomFormat) nor SPDX (spdxVersion): give CycloneDX 1.5/1.6 JSON or SPDX 2.3 JSON")
	}
	if err != nil {
		return SBOM{}, err
	}
	s.SHA256 = hex.EncodeToString(sum[:])
	return s, nil
}

type cdxComponent struct {
	BOMRef     string         `json:"bom-ref"`
	Type       string         `json:"type"`
	Group      string         `json:"group"`
	Name       string         `json:"name"`
	Version    string         `json:"version"`
	PURL       string         `json:"purl"`
	CPE        string         `json:"cpe"`
	Supplier   *cdxOrg        `json:"supplier"`
	Publisher  string         `json:"publisher"`
	Author     string         `json:"author"`
	Properties []cdxProperty  `json:"properties"`
	Components []cdxComponent `json:"components"`
}

type cdxOrg struct {
	Name string `json:"name"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxBOM struct {
	Metadata struct {
		Component *cdxComponent `json:"component"`
	} `json:"metadata"`
	Components []cdxComponent `json:"components"`
}

// Property names that carry the FDA fields in CycloneDX (which has no field of its own for
// them): compared without case, '-', '_', ':' or spaces.
var (
	supportLevelProps = []string{"supportlevel", "levelofsupport", "fdasupportlevel", "cdxsupportlevel"}
	endOfSupportProps = []string{"endofsupport", "endofsupportdate", "eos", "eosdate", "fdaendofsupport", "endoflife"}
)

func propKey(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', ':', ' ', '.':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func hasKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func parseCycloneDX(data []byte, spec string) (SBOM, error) {
	switch spec {
	case "1.5", "1.6":
	default:
		return SBOM{}, vitalgate.Errorf(vitalgate.EINVALID, "CycloneDX specVersion %q: give CycloneDX 1.5 or 1.6 JSON", spec)
	}
	var b cdxBOM
	if err := json.Unmarshal(data, &b); err != nil {
		return SBOM{}, vitalgate.Errorf(vitalgate.EINVALID, "the CycloneDX SBOM does not parse: %v", err)
	}
	s := SBOM{Format: "CycloneDX " + spec}
	if m := b.Metadata.Component; m != nil {
		s.Subject = strings.TrimSpace(m.Name + " " + m.Version)
	}
	var walk func(cs []cdxComponent, parent string, depth int) error
	walk = func(cs []cdxComponent, parent string, depth int) error {
		if depth > maxDepth {
			return vitalgate.Errorf(vitalgate.EINVALID, "the CycloneDX components nest deeper than %d levels", maxDepth)
		}
		for _, c := range cs {
			if len(s.Components) >= maxComponents {
				return vitalgate.Errorf(vitalgate.EINVALID, "the SBOM lists over %d components", maxComponents)
			}
			name := c.Name
			if c.Group != "" && !strings.HasPrefix(name, c.Group) {
				name = c.Group + "/" + c.Name
			}
			comp := Component{Ref: c.BOMRef, Name: name, Version: c.Version, PURL: strings.TrimSpace(c.PURL),
				CPE: strings.TrimSpace(c.CPE), Parent: parent}
			switch {
			case c.Supplier != nil && c.Supplier.Name != "":
				comp.Supplier = c.Supplier.Name
			case c.Publisher != "":
				comp.Supplier = c.Publisher
			}
			for _, p := range c.Properties {
				k := propKey(p.Name)
				switch {
				case hasKey(supportLevelProps, k):
					comp.SupportLevel = p.Value
				case hasKey(endOfSupportProps, k):
					comp.EndOfSupport = p.Value
				}
			}
			s.Components = append(s.Components, comp)
			if err := walk(c.Components, name, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(b.Components, "", 0); err != nil {
		return SBOM{}, err
	}
	return s, nil
}

type spdxDoc struct {
	SPDXVersion string `json:"spdxVersion"`
	Name        string `json:"name"`
	Packages    []struct {
		SPDXID         string `json:"SPDXID"`
		Name           string `json:"name"`
		VersionInfo    string `json:"versionInfo"`
		Supplier       string `json:"supplier"`
		Originator     string `json:"originator"`
		ValidUntilDate string `json:"validUntilDate"`
		ExternalRefs   []struct {
			Category string `json:"referenceCategory"`
			Type     string `json:"referenceType"`
			Locator  string `json:"referenceLocator"`
		} `json:"externalRefs"`
		Annotations []struct {
			Comment string `json:"comment"`
		} `json:"annotations"`
	} `json:"packages"`
	DocumentDescribes []string `json:"documentDescribes"`
	Relationships     []struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	} `json:"relationships"`
}

// parseSPDX reads SPDX 2.3 JSON: one component per package, except the packages the
// document describes (the product itself). supplier is "Organization: X" or "Person: X"
// (NOASSERTION is missing); the end of support is validUntilDate; the support level an
// annotation "support level: X".
func parseSPDX(data []byte, version string) (SBOM, error) {
	if version != "SPDX-2.3" {
		return SBOM{}, vitalgate.Errorf(vitalgate.EINVALID, "spdxVersion %q: give SPDX 2.3 JSON", version)
	}
	var d spdxDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return SBOM{}, vitalgate.Errorf(vitalgate.EINVALID, "the SPDX SBOM does not parse: %v", err)
	}
	if len(d.Packages) > maxComponents {
		return SBOM{}, vitalgate.Errorf(vitalgate.EINVALID, "the SBOM lists over %d packages", maxComponents)
	}
	s := SBOM{Format: "SPDX 2.3", Subject: d.Name}
	describes := map[string]bool{}
	for _, id := range d.DocumentDescribes {
		describes[id] = true
	}
	parents := map[string]string{}
	for _, r := range d.Relationships {
		switch r.Type {
		case "DESCRIBES":
			if r.Element == "SPDXRef-DOCUMENT" {
				describes[r.Related] = true
			}
		case "CONTAINS", "DEPENDS_ON":
			parents[r.Related] = r.Element
		}
	}
	names := map[string]string{}
	for _, p := range d.Packages {
		names[p.SPDXID] = p.Name
	}
	for _, p := range d.Packages {
		if describes[p.SPDXID] {
			if s.Subject == "" {
				s.Subject = strings.TrimSpace(p.Name + " " + p.VersionInfo)
			}
			continue
		}
		c := Component{Ref: p.SPDXID, Name: p.Name, Version: noAssertion(p.VersionInfo), EndOfSupport: noAssertion(p.ValidUntilDate)}
		if par := parents[p.SPDXID]; par != "" && !describes[par] {
			c.Parent = names[par]
		}
		sup := noAssertion(p.Supplier)
		if sup == "" {
			sup = noAssertion(p.Originator)
		}
		if _, after, ok := strings.Cut(sup, ":"); ok {
			sup = strings.TrimSpace(after)
		}
		c.Supplier = sup
		for _, r := range p.ExternalRefs {
			switch r.Type {
			case "purl":
				if c.PURL == "" {
					c.PURL = r.Locator
				}
			case "cpe23Type", "cpe22Type":
				if c.CPE == "" {
					c.CPE = r.Locator
				}
			}
		}
		for _, a := range p.Annotations {
			if k, v, ok := strings.Cut(a.Comment, ":"); ok && hasKey(supportLevelProps, propKey(k)) {
				c.SupportLevel = strings.TrimSpace(v)
			}
		}
		s.Components = append(s.Components, c)
	}
	return s, nil
}

func noAssertion(s string) string {
	s = strings.TrimSpace(s)
	if s == "NOASSERTION" || s == "NONE" {
		return ""
	}
	return s
}

// Gaps are the components of an SBOM that lack something, with what they lack: reported,
// never dropped (a component without a purl or a version cannot be matched, and the FDA
// asks for supplier, support level and end-of-support date of each).
type Gap struct {
	Component string   `json:"component"`
	Missing   []string `json:"missing"`
}

// Gaps returns the components that lack something, in the SBOM's order.
func (s SBOM) Gaps() []Gap {
	var out []Gap
	for _, c := range s.Components {
		if m := c.Missing(); len(m) > 0 {
			out = append(out, Gap{Component: label(c), Missing: m})
		}
	}
	return out
}

// label is a component's name and version for reports.
func label(c Component) string {
	if c.Version == "" {
		return c.Name
	}
	return c.Name + " " + c.Version
}

// GapCounts returns how many components lack each field, by field, in a stable order.
func (s SBOM) GapCounts() []FieldCount {
	n := map[string]int{}
	for _, c := range s.Components {
		for _, m := range c.Missing() {
			n[m]++
		}
	}
	out := make([]FieldCount, 0, len(n))
	for f, c := range n {
		out = append(out, FieldCount{Field: f, Components: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// FieldCount is how many components lack one field.
type FieldCount struct {
	Field      string `json:"field"`
	Components int    `json:"components"`
}

// compactJSON returns data without insignificant space (stored documents stay small).
func compactJSON(data []byte) ([]byte, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	return b.Bytes(), nil
}
