package evidence

import (
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/sbom"
)

// Report is the evidence report: the model every output format renders.
type Report struct {
	Title        string           `json:"title"`
	GeneratedAt  time.Time        `json:"generated_at"`
	Deployment   string           `json:"deployment"`
	Requirements []RequirementRow `json:"requirements"`
	Controls     []ControlRow     `json:"controls"`
	Gaps         []GapRow         `json:"gaps"`
	Nodes        []NodeRow        `json:"nodes"`
	Interfaces   []InterfaceRow   `json:"interfaces"`
	Threats      []Threat         `json:"threats"`
	SBOM         []Component      `json:"sbom"`
	State        *State           `json:"state"`
	Diagrams     []Diagram        `json:"diagrams"`
	TestResults  bool             `json:"test_results_given"`
}

// RequirementRow is one FDA category or HIPAA specification with the controls that meet it.
type RequirementRow struct {
	Requirement
	Status   Status   `json:"status"`   // the worst status among its built controls; partial when some are gaps; gap when all are
	Controls []string `json:"controls"` // control ids
	Gaps     []string `json:"gaps"`     // ids of its controls that are gaps
}

// ControlRow is one control with its live state and its tests.
type ControlRow struct {
	Control
	State      Finding   `json:"state"`
	TestResult []TestRow `json:"test_results,omitempty"`
}

// TestRow is one test that proves a control, with its last result when a results file was
// given ("" otherwise).
type TestRow struct {
	Name   string `json:"name"`
	Result string `json:"result,omitempty"`
}

// GapRow is one gap, stated plainly.
type GapRow struct {
	Control      string   `json:"control"`
	Title        string   `json:"title"`
	Gap          string   `json:"gap"`
	Requirements []string `json:"requirements"` // refs, e.g. "164.312(d)"
}

// NodeRow is one node's recorded configuration, summed up.
type NodeRow struct {
	Node       string    `json:"node"`
	RecordedAt time.Time `json:"recorded_at"`
	Version    string    `json:"version"`
	TLS        string    `json:"tls"`
	FIPS       bool      `json:"fips140"`
	Listeners  []string  `json:"listeners"`
}

// InterfaceRow is one network endpoint and how its caller authenticates.
type InterfaceRow struct {
	Interface  string `json:"interface"` // threat-model interface id
	Listener   string `json:"listener"`
	Addr       string `json:"addr"`
	Endpoint   string `json:"endpoint"` // "GET /fhir/Observation", or the protocol for non-HTTP listeners
	Auth       string `json:"auth"`
	Permission string `json:"permission,omitempty"`
}

// Component is one SBOM component.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	PURL    string `json:"purl"`
	SHA256  string `json:"sha256,omitempty"`
	// Support is who maintains the component for this product (§V.A.4 support level).
	Support string `json:"support"`
	// EndOfSupport is the component's end of support, when known.
	EndOfSupport string `json:"end_of_support"`
}

// Support levels of SBOM components.
const (
	supportProject  = "maintained by the Vitalgate project"
	supportUpstream = "upstream open source, no support contract; Vitalgate takes its fixes"
	endUnknown      = "not tracked yet (gap: vulnerability posture)"
)

// sbomComponents lists the binary's modules from its build information.
func sbomComponents(bi *debug.BuildInfo) []Component {
	if bi == nil {
		return nil
	}
	bom, err := sbom.CycloneDX(bi, sbom.Options{Now: time.Unix(0, 0)})
	if err != nil {
		return nil
	}
	out := []Component{{Name: bom.Metadata.Component.Name, Version: bom.Metadata.Component.Version, PURL: bom.Metadata.Component.PURL,
		Support: supportProject, EndOfSupport: "supported while it is the latest release"}}
	for _, c := range bom.Components {
		k := Component{Name: c.Name, Version: c.Version, PURL: c.PURL, Support: supportUpstream, EndOfSupport: endUnknown}
		for _, h := range c.Hashes {
			if h.Alg == "SHA-256" {
				k.SHA256 = h.Content
			}
		}
		out = append(out, k)
	}
	return out
}

// build assembles the report from the catalogue and the gathered state.
func build(cat Catalogue, tm ThreatModel, s *State, haveResults bool) (*Report, error) {
	r := &Report{Title: "Vitalgate security evidence", GeneratedAt: s.GeneratedAt, Deployment: s.Origin, State: s, SBOM: s.SBOM, TestResults: haveResults}
	refs := map[string]string{}
	for _, q := range cat.Requirements {
		refs[q.ID] = q.Ref
	}
	states := map[string]Status{}
	for _, k := range cat.Controls {
		row := ControlRow{Control: k}
		if k.Gap != "" {
			row.State = Finding{Status: StatusGap, Facts: []string{k.Gap}}
			g := GapRow{Control: k.ID, Title: k.Title, Gap: k.Gap}
			for _, q := range k.Requirements {
				g.Requirements = append(g.Requirements, refs[q])
			}
			r.Gaps = append(r.Gaps, g)
		} else {
			p, ok := probes[k.ID]
			if !ok {
				return nil, fmt.Errorf("evidence: control %s has no probe", k.ID)
			}
			row.State = p(s)
		}
		for _, t := range k.Tests {
			tr := TestRow{Name: t}
			if haveResults {
				tr.Result = s.Tests[t]
				if tr.Result == "" {
					tr.Result = "not run"
				}
			}
			row.TestResult = append(row.TestResult, tr)
		}
		states[k.ID] = row.State.Status
		r.Controls = append(r.Controls, row)
	}
	rank := map[Status]int{StatusEnforced: 0, StatusAttention: 1, StatusUnknown: 2}
	for _, q := range cat.Requirements {
		row := RequirementRow{Requirement: q, Status: StatusGap}
		built := false
		for _, k := range cat.Controls {
			for _, id := range k.Requirements {
				if id != q.ID {
					continue
				}
				row.Controls = append(row.Controls, k.ID)
				if k.Gap != "" {
					row.Gaps = append(row.Gaps, k.ID)
				} else if states[k.ID] == StatusNotRun {
					continue // not part of the deployment's state: evidence not given with this report
				} else if !built || rank[states[k.ID]] > rank[row.Status] {
					row.Status, built = states[k.ID], true
				}
			}
		}
		if row.Status == StatusEnforced && len(row.Gaps) > 0 {
			row.Status = StatusPartial
		}
		r.Requirements = append(r.Requirements, row)
	}
	for _, n := range s.Nodes {
		nr := NodeRow{Node: n.Node, RecordedAt: n.RecordedAt.Truncate(time.Second), Version: n.Version, TLS: strings.Join(n.TLS.Versions, ", "), FIPS: n.FIPS140}
		for _, l := range n.Listeners {
			nr.Listeners = append(nr.Listeners, l.Name+" "+l.Addr)
		}
		r.Nodes = append(r.Nodes, nr)
	}
	r.Interfaces = interfaces(tm, s)
	r.Threats = tm.Threats
	r.Diagrams = diagrams(r)
	return r, nil
}

// interfaces lists every endpoint of every recorded node (routes once per distinct
// listener address), each with its threat-model interface.
func interfaces(tm ThreatModel, s *State) []InterfaceRow {
	var out []InterfaceRow
	seen := map[string]bool{}
	add := func(row InterfaceRow) {
		key := row.Listener + "|" + row.Addr + "|" + row.Endpoint
		if !seen[key] {
			seen[key] = true
			out = append(out, row)
		}
	}
	for _, n := range s.Nodes {
		for _, l := range n.Listeners {
			if l.Name != "https" {
				add(InterfaceRow{Interface: classify(tm, l.Name, "", ""), Listener: l.Name, Addr: l.Addr, Endpoint: l.Protocol, Auth: l.ClientAuth})
				continue
			}
			for _, rt := range n.Routes {
				add(InterfaceRow{Interface: classify(tm, "https", rt.Auth, rt.Pattern), Listener: "https", Addr: l.Addr,
					Endpoint: rt.Method + " " + rt.Pattern, Auth: rt.Auth, Permission: rt.Permission})
			}
		}
		if n.Audit.SyslogAddr != "" {
			add(InterfaceRow{Interface: classify(tm, "syslog", "", ""), Listener: "syslog", Addr: n.Audit.SyslogAddr,
				Endpoint: "RFC 5424 syslog over TLS (outbound)", Auth: "server certificate of the collector"})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Listener != out[j].Listener {
			return out[i].Listener < out[j].Listener
		}
		if out[i].Addr != out[j].Addr {
			return out[i].Addr < out[j].Addr
		}
		return out[i].Endpoint < out[j].Endpoint
	})
	return out
}

// classify returns the threat-model interface of an endpoint: the first whose listener,
// authentication and path prefix match.
func classify(tm ThreatModel, listener, auth, pattern string) string {
	for _, i := range tm.Interfaces {
		if i.Listener == listener && (i.Auth == "" || i.Auth == auth) && strings.HasPrefix(pattern, i.PathPrefix) {
			return i.ID
		}
	}
	return "unclassified"
}
