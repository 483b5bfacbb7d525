package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Target is a goal a row is compared against (reported, never enforced). Of says what is
// compared: the row's Value or its Ratio to the baseline; Op is ">=" or "<=".
type Target struct {
	Of        string  `json:"of"` // "value" or "ratio"
	Op        string  `json:"op"` // ">=" or "<="
	Threshold float64 `json:"threshold"`
}

// AtLeast is the target Value >= v.
func AtLeast(v float64) *Target { return &Target{Of: "value", Op: ">=", Threshold: v} }

// AtMost is the target Value <= v.
func AtMost(v float64) *Target { return &Target{Of: "value", Op: "<=", Threshold: v} }

// RatioAtLeast is the target Ratio >= r.
func RatioAtLeast(r float64) *Target { return &Target{Of: "ratio", Op: ">=", Threshold: r} }

// String renders the target for a table, e.g. ">= 50% of baseline" or "<= 25".
func (t *Target) String() string {
	if t == nil {
		return ""
	}
	if t.Of == "ratio" {
		return fmt.Sprintf("%s %s of baseline", t.Op, formatPercent(t.Threshold))
	}
	return t.Op + " " + formatNumber(t.Threshold)
}

// Row is one measured figure: a value in a unit, and when the scenario has one, the same
// measure of the baseline and the ratio value/baseline. For latencies (Lower set) smaller is
// better, and the ratio is still value/baseline.
type Row struct {
	Scenario string  `json:"scenario"`
	Metric   string  `json:"metric"`
	Unit     string  `json:"unit"`
	Value    float64 `json:"value"`
	// Baseline is the same measure of the scenario's baseline; 0 when it has none.
	Baseline     float64 `json:"baseline,omitempty"`
	BaselineName string  `json:"baseline_name,omitempty"`
	Lower        bool    `json:"lower_is_better,omitempty"`
	Target       *Target `json:"target,omitempty"`
	Note         string  `json:"note,omitempty"`
}

// HasBaseline reports whether the row has a baseline to compare with.
func (r Row) HasBaseline() bool { return r.Baseline != 0 }

// TargetString renders the row's target with the row's unit, e.g. "<= 25 ms" or
// ">= 50% of baseline"; "" without a target.
func (r Row) TargetString() string {
	if r.Target == nil {
		return ""
	}
	if r.Target.Of == "value" && r.Unit != "" {
		return r.Target.String() + " " + r.Unit
	}
	return r.Target.String()
}

// Ratio returns Value/Baseline, or NaN without a baseline.
func (r Row) Ratio() float64 {
	if !r.HasBaseline() {
		return math.NaN()
	}
	return r.Value / r.Baseline
}

// Met reports whether the row meets its target; ok is false when it has none (or the
// target needs a ratio and there is no baseline).
func (r Row) Met() (met, ok bool) {
	t := r.Target
	if t == nil {
		return false, false
	}
	v := r.Value
	if t.Of == "ratio" {
		if !r.HasBaseline() {
			return false, false
		}
		v = r.Ratio()
	}
	if math.IsNaN(v) {
		return false, false
	}
	if t.Op == "<=" {
		return v <= t.Threshold, true
	}
	return v >= t.Threshold, true
}

// MetString returns "yes", "no" or "" (no target).
func (r Row) MetString() string {
	met, ok := r.Met()
	switch {
	case !ok:
		return ""
	case met:
		return "yes"
	}
	return "no"
}

// Report is the result of a run: where and when it ran, how, and its rows.
type Report struct {
	Machine  MachineInfo       `json:"machine"`
	Start    time.Time         `json:"start"`
	Duration time.Duration     `json:"duration_ns"`
	Settings map[string]string `json:"settings"`
	Notes    []string          `json:"notes,omitempty"`
	Rows     []Row             `json:"rows"`
}

// jsonRow is a Row as written to JSON, with its derived ratio and verdict.
type jsonRow struct {
	Row
	Ratio *float64 `json:"ratio,omitempty"`
	Met   string   `json:"target_met,omitempty"`
}

// WriteJSON writes the report as indented JSON; each row also carries its ratio and
// whether it met its target.
func (rep *Report) WriteJSON(w io.Writer) error {
	out := struct {
		*Report
		Rows []jsonRow `json:"rows"`
	}{Report: rep}
	for _, r := range rep.Rows {
		jr := jsonRow{Row: r, Met: r.MetString()}
		if r.HasBaseline() {
			ratio := r.Ratio()
			jr.Ratio = &ratio
		}
		out.Rows = append(out.Rows, jr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// csvHeader is the header row of WriteCSV.
var csvHeader = []string{"scenario", "metric", "unit", "value", "baseline_name", "baseline", "ratio", "target", "target_met", "note"}

// WriteCSV writes one line per row, with full precision numbers.
func (rep *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, r := range rep.Rows {
		rec := []string{r.Scenario, r.Metric, r.Unit, strconv.FormatFloat(r.Value, 'g', -1, 64), r.BaselineName, "", "", r.TargetString(), r.MetString(), r.Note}
		if r.HasBaseline() {
			rec[5] = strconv.FormatFloat(r.Baseline, 'g', -1, 64)
			rec[6] = strconv.FormatFloat(r.Ratio(), 'f', 4, 64)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes the rows as an aligned text table (or Markdown with markdown set):
// scenario, metric, figure, baseline, ratio, target and whether it is met.
func (rep *Report) WriteTable(w io.Writer, markdown bool) error {
	header := []string{"scenario", "metric", "figure", "baseline", "ratio", "target", "met"}
	var lines [][]string
	for _, r := range rep.Rows {
		figure := formatNumber(r.Value) + " " + r.Unit
		base, ratio := "—", "—"
		if r.HasBaseline() {
			base = formatNumber(r.Baseline) + " " + r.Unit
			if r.BaselineName != "" {
				base += " (" + r.BaselineName + ")"
			}
			ratio = formatPercent(r.Ratio())
		}
		lines = append(lines, []string{r.Scenario, r.Metric, figure, base, ratio, r.TargetString(), r.MetString()})
	}
	if markdown {
		fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
		fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(header)))
		for _, l := range lines {
			for i := range l {
				l[i] = strings.ReplaceAll(l[i], "|", `\|`)
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(l, " | "))
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, l := range lines {
		fmt.Fprintln(tw, strings.Join(l, "\t"))
	}
	return tw.Flush()
}

// formatNumber renders a figure with about three significant digits, without exponent,
// grouping thousands: 0.0123, 1.23, 123, 12 345.
func formatNumber(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case v == 0:
		return "0"
	}
	a := math.Abs(v)
	var s string
	switch {
	case a >= 1000 || (a >= 1 && v == math.Trunc(v)):
		s = strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	return groupThousands(s)
}

// groupThousands inserts a space every three digits of the integer part of a number.
func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if len(intPart) <= 4 {
		return sign + s
	}
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return sign + b.String()
}

// formatPercent renders a ratio as a percentage: 0.5 is "50%", 0.0123 is "1.2%".
func formatPercent(r float64) string {
	p := r * 100
	switch {
	case math.IsNaN(p):
		return "—"
	case math.Abs(p) >= 10:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}
