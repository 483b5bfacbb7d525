package assess

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Severity rates a Finding. The zero value is Info; higher values are worse.
type Severity int

// Severities, from harmless to worst. See the package documentation for the policy.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// String returns the lower-case name: info, low, medium, high or critical.
func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText encodes the severity as its name (so JSON shows "high", not 3).
func (s Severity) MarshalText() ([]byte, error) {
	if s < Info || s > Critical {
		return nil, fmt.Errorf("assess: invalid severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText parses a severity name (case-insensitive).
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity parses a severity name (case-insensitive).
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return Info, fmt.Errorf("assess: unknown severity %q (want info, low, medium, high or critical)", name)
}

// Finding is one observation about the target.
type Finding struct {
	// ID is stable across runs for the same observation (e.g. "tls-version-tls1.0",
	// "route-open:GET /fhir/Patient/x"), so reports can be compared.
	ID string `json:"id"`
	// Title is a one-line summary.
	Title string `json:"title"`
	// Severity rates the finding.
	Severity Severity `json:"severity"`
	// Detail explains why it matters and what to do.
	Detail string `json:"detail,omitempty"`
	// Evidence is what was sent and what came back.
	Evidence string `json:"evidence,omitempty"`
}

// Report is the result of an assessment.
type Report struct {
	// Target is the assessed base URL.
	Target string `json:"target"`
	// Started is when the assessment began.
	Started time.Time `json:"started"`
	// Duration is how long it took.
	Duration time.Duration `json:"-"`
	// Findings, worst first (Sort orders them).
	Findings []Finding `json:"findings"`
}

// MaxSeverity returns the worst severity among the findings (Info for none).
func (r *Report) MaxSeverity() Severity {
	worst := Info
	for _, f := range r.Findings {
		if f.Severity > worst {
			worst = f.Severity
		}
	}
	return worst
}

// Count returns how many findings have severity s or worse.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= s {
			n++
		}
	}
	return n
}

// Find returns the finding with the given ID, if any.
func (r *Report) Find(id string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.ID == id {
			return f, true
		}
	}
	return Finding{}, false
}

// Sort orders the findings worst first, then by ID.
func (r *Report) Sort() {
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		return a.ID < b.ID
	})
}

// add appends a finding.
func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

// reportJSON is the JSON form of a Report: the duration in words and milliseconds, the
// worst severity and the count per severity.
type reportJSON struct {
	Target      string         `json:"target"`
	Started     time.Time      `json:"started"`
	Duration    string         `json:"duration"`
	DurationMS  int64          `json:"duration_ms"`
	MaxSeverity Severity       `json:"max_severity"`
	Counts      map[string]int `json:"counts"`
	Findings    []Finding      `json:"findings"`
}

// MarshalJSON encodes the report with its duration, worst severity and counts per severity.
func (r *Report) MarshalJSON() ([]byte, error) {
	counts := map[string]int{}
	for _, n := range severityNames {
		counts[n] = 0
	}
	for _, f := range r.Findings {
		counts[f.Severity.String()]++
	}
	findings := r.Findings
	if findings == nil {
		findings = []Finding{}
	}
	return json.Marshal(reportJSON{
		Target: r.Target, Started: r.Started.UTC(), Duration: r.Duration.Round(time.Millisecond).String(),
		DurationMS: r.Duration.Milliseconds(), MaxSeverity: r.MaxSeverity(), Counts: counts, Findings: findings,
	})
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (r *Report) UnmarshalJSON(b []byte) error {
	var v reportJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Report{Target: v.Target, Started: v.Started, Duration: time.Duration(v.DurationMS) * time.Millisecond, Findings: v.Findings}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a human: a summary line, then each finding worst first
// with its detail and evidence.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Vitalgate security assessment of %s\n", r.Target)
	fmt.Fprintf(&b, "started %s, took %s\n", r.Started.UTC().Format(time.RFC3339), r.Duration.Round(time.Millisecond))
	var parts []string
	for s := Critical; s >= Info; s-- {
		n := 0
		for _, f := range r.Findings {
			if f.Severity == s {
				n++
			}
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, s))
	}
	fmt.Fprintf(&b, "%d findings (%s); worst: %s\n", len(r.Findings), strings.Join(parts, ", "), r.MaxSeverity())
	sorted := Report{Findings: append([]Finding(nil), r.Findings...)}
	sorted.Sort()
	for _, f := range sorted.Findings {
		fmt.Fprintf(&b, "\n[%s] %s\n  id: %s\n", strings.ToUpper(f.Severity.String()), f.Title, f.ID)
		if f.Detail != "" {
			writeIndented(&b, f.Detail, "  ")
		}
		if f.Evidence != "" {
			writeIndented(&b, "evidence: "+f.Evidence, "  ")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeIndented writes text indented by prefix; a block that begins with a label
// ("evidence: ") has its further lines indented under the label's text.
func writeIndented(b *strings.Builder, text, prefix string) {
	cont := prefix
	if label, _, ok := strings.Cut(text, ": "); ok && label == "evidence" {
		cont = prefix + strings.Repeat(" ", len(label)+2)
	}
	for i, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if i == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(cont)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
}
