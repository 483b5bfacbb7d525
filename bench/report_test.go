package bench_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/bench"
)

// sampleReport has a row with a ratio target (met), a latency row with a value target
// (missed), a row without baseline and a label that needs escaping.
func sampleReport() *bench.Report {
	return &bench.Report{
		Machine:  bench.MachineInfo{CPU: "Test CPU <2 cores>", NumCPU: 2},
		Settings: map[string]string{"duration": "1s"},
		Notes:    []string{"rate limits raised"},
		Rows: []bench.Row{
			{Scenario: "ingest", Metric: "accepted/s", Unit: "obs/s", Value: 600, Baseline: 1000, BaselineName: "discard", Target: bench.RatioAtLeast(0.5)},
			{Scenario: "ingest", Metric: "p99 latency", Unit: "ms", Value: 30, Baseline: 10, Lower: true, Target: bench.AtMost(25)},
			{Scenario: "audit-append", Metric: "entries/s", Unit: "entries/s", Value: 25000, Target: bench.AtLeast(20000)},
			{Scenario: "search", Metric: "a | b & <c>", Unit: "q/s", Value: 1, Baseline: 4},
		},
	}
}

func TestRowRatioAndTarget(t *testing.T) {
	rows := sampleReport().Rows
	tests := []struct {
		row    bench.Row
		ratio  float64
		met    string
		target string
	}{
		{rows[0], 0.6, "yes", ">= 50% of baseline"},
		{rows[1], 3, "no", "<= 25 ms"},
		{rows[2], math.NaN(), "yes", ">= 20 000 entries/s"},
		{rows[3], 0.25, "", ""},
		{bench.Row{Value: 1, Target: bench.RatioAtLeast(0.5)}, math.NaN(), "", ">= 50% of baseline"},
	}
	for _, tt := range tests {
		t.Run(tt.row.Metric, func(t *testing.T) {
			r := tt.row.Ratio()
			if math.IsNaN(tt.ratio) != math.IsNaN(r) || (!math.IsNaN(r) && math.Abs(r-tt.ratio) > 1e-9) {
				t.Errorf("Ratio = %v, want %v", r, tt.ratio)
			}
			if got := tt.row.MetString(); got != tt.met {
				t.Errorf("MetString = %q, want %q", got, tt.met)
			}
			if got := tt.row.TargetString(); got != tt.target {
				t.Errorf("TargetString = %q, want %q", got, tt.target)
			}
		})
	}
}

func TestWriteCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("%d records, want header and 4 rows", len(recs))
	}
	if strings.Join(recs[0], ",") != "scenario,metric,unit,value,baseline_name,baseline,ratio,target,target_met,note" {
		t.Errorf("header = %v", recs[0])
	}
	if got := recs[1]; got[3] != "600" || got[5] != "1000" || got[6] != "0.6000" || got[8] != "yes" {
		t.Errorf("first row = %v", got)
	}
	if got := recs[3]; got[5] != "" || got[6] != "" {
		t.Errorf("a row without baseline has baseline %q ratio %q", got[5], got[6])
	}
	if recs[4][1] != "a | b & <c>" {
		t.Errorf("metric did not survive CSV: %q", recs[4][1])
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Machine struct {
			CPU string `json:"cpu"`
		} `json:"machine"`
		Rows []struct {
			Metric string   `json:"metric"`
			Ratio  *float64 `json:"ratio"`
			Met    string   `json:"target_met"`
			Target *struct {
				Of string `json:"of"`
			} `json:"target"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if out.Machine.CPU != "Test CPU <2 cores>" || len(out.Rows) != 4 {
		t.Fatalf("machine %q, %d rows", out.Machine.CPU, len(out.Rows))
	}
	if r := out.Rows[0]; r.Ratio == nil || *r.Ratio != 0.6 || r.Met != "yes" || r.Target == nil || r.Target.Of != "ratio" {
		t.Errorf("first row = %+v", r)
	}
	if out.Rows[2].Ratio != nil {
		t.Error("a row without baseline has a ratio")
	}
}

func TestWriteTable(t *testing.T) {
	var text, md bytes.Buffer
	rep := sampleReport()
	if err := rep.WriteTable(&text, false); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteTable(&md, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"600 obs/s", "1000 obs/s (discard)", "60%", "300%", "25 000 entries/s", "—"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, text.String())
		}
	}
	lines := strings.Split(strings.TrimSpace(md.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("markdown has %d lines, want 6:\n%s", len(lines), md.String())
	}
	for _, l := range lines {
		if n := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); n != 8 {
			t.Errorf("markdown line has %d cell separators, want 8: %s", n, l)
		}
	}
}

func TestWriteSVG(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, one bar per row with a baseline.
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	bars, root := 0, ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, buf.String())
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "rect" {
				bars++
			}
		}
	}
	if root != "svg" {
		t.Errorf("root element %q", root)
	}
	if bars != 1+3 { // the background and three rows with a baseline
		t.Errorf("%d rects, want 4", bars)
	}
	if !strings.Contains(buf.String(), "a | b &amp; &lt;c&gt;") {
		t.Error("labels are not escaped")
	}
	var empty bytes.Buffer
	if err := (&bench.Report{}).WriteSVG(&empty); err != nil || !strings.Contains(empty.String(), "no scenario with a baseline") {
		t.Errorf("empty report: %v %s", err, empty.String())
	}
}

func TestMachine(t *testing.T) {
	m := bench.Machine()
	if m.NumCPU < 1 || m.GoVersion == "" || m.OS == "" {
		t.Errorf("Machine() = %+v", m)
	}
	pm := bench.ReadProcessMemory()
	if pm.HeapAlloc == 0 || pm.Goroutines < 1 {
		t.Errorf("ReadProcessMemory() = %+v", pm)
	}
}
