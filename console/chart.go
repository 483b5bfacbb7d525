package console

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/vitals"
)

// maxPoints bounds the readings one chart page reads.
const maxPoints = 1000

// reading is one value of one vital sign.
type reading struct {
	Key, Name, Unit string
	At              time.Time
	Value           float64
	Low, High       float64 // the Observation's reference range; NaN when it gives none
}

type quantity struct {
	Value *float64 `json:"value"`
	Unit  string   `json:"unit"`
	Code  string   `json:"code"`
}

type codeable struct {
	Coding []struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display"`
	} `json:"coding"`
	Text string `json:"text"`
}

type refRange []struct {
	Low  *quantity `json:"low"`
	High *quantity `json:"high"`
}

// name returns a plain name and a key of a code.
func (c codeable) name() (key, name string) {
	for _, cd := range c.Coding {
		if v, ok := vitals.Lookup(cd.System, cd.Code); ok {
			return cd.System + "|" + cd.Code, v.Name
		}
	}
	if len(c.Coding) > 0 {
		cd := c.Coding[0]
		name = cd.Display
		if name == "" {
			name = cd.Code
		}
		return cd.System + "|" + cd.Code, name
	}
	return "text|" + c.Text, c.Text
}

// parseObservation returns the readings of an Observation: its value, or the values of its
// components (blood pressure). What it cannot read it leaves out.
func parseObservation(b []byte) []reading {
	var o struct {
		Code              codeable  `json:"code"`
		EffectiveDateTime string    `json:"effectiveDateTime"`
		ValueQuantity     *quantity `json:"valueQuantity"`
		ReferenceRange    refRange  `json:"referenceRange"`
		Component         []struct {
			Code           codeable  `json:"code"`
			ValueQuantity  *quantity `json:"valueQuantity"`
			ReferenceRange refRange  `json:"referenceRange"`
		} `json:"component"`
	}
	if json.Unmarshal(b, &o) != nil {
		return nil
	}
	at, err := time.Parse(time.RFC3339Nano, o.EffectiveDateTime)
	if err != nil {
		return nil
	}
	one := func(c codeable, q *quantity, rr refRange) (reading, bool) {
		if q == nil || q.Value == nil || !plausible(*q.Value) {
			return reading{}, false
		}
		key, name := c.name()
		unit := q.Unit
		if unit == "" {
			unit = q.Code
		}
		r := reading{Key: key + "|" + unit, Name: name, Unit: unit, At: at, Value: *q.Value, Low: math.NaN(), High: math.NaN()}
		if len(rr) > 0 {
			if rr[0].Low != nil && rr[0].Low.Value != nil && plausible(*rr[0].Low.Value) {
				r.Low = *rr[0].Low.Value
			}
			if rr[0].High != nil && rr[0].High.Value != nil && plausible(*rr[0].High.Value) {
				r.High = *rr[0].High.Value
			}
		}
		return r, true
	}
	var out []reading
	if r, ok := one(o.Code, o.ValueQuantity, o.ReferenceRange); ok {
		out = append(out, r)
	}
	for _, c := range o.Component {
		if r, ok := one(c.Code, c.ValueQuantity, c.ReferenceRange); ok {
			out = append(out, r)
		}
	}
	return out
}

// plausible reports whether v can be charted: finite, and small enough that differences of
// two values stay finite (no vital sign comes near 1e12).
func plausible(v float64) bool { return !math.IsNaN(v) && math.Abs(v) < 1e12 }

// chart is one vital sign's readings as SVG geometry (computed here; the template only
// writes numbers into attributes).
type chart struct {
	Name, Unit     string
	Width, Height  int
	Points         string // polyline points "x,y x,y ..."
	Dots           []dot
	MinLabel       string
	MaxLabel       string
	Latest         string
	LatestAt       time.Time
	Count          int
	HasRange       bool
	RangeY, RangeH float64 // the reference band
	RangeLabel     string
}

type dot struct{ X, Y float64 }

// Chart dimensions (SVG user units).
const (
	chartW, chartH = 720, 180
	padY           = 10
)

// buildCharts groups readings by vital sign and unit and lays each group out over
// [from, to]. Charts are ordered by name.
func buildCharts(rs []reading, from, to time.Time) []chart {
	groups := map[string][]reading{}
	for _, r := range rs {
		groups[r.Key] = append(groups[r.Key], r)
	}
	var out []chart
	span := to.Sub(from).Seconds()
	for _, g := range groups {
		slices.SortFunc(g, func(a, b reading) int { return a.At.Compare(b.At) })
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, r := range g {
			lo, hi = math.Min(lo, r.Value), math.Max(hi, r.Value)
		}
		last := g[len(g)-1]
		hasRange := !math.IsNaN(last.Low) && !math.IsNaN(last.High) && last.High > last.Low
		if hasRange {
			lo, hi = math.Min(lo, last.Low), math.Max(hi, last.High)
		}
		if hi-lo < 1e-9 {
			lo, hi = lo-1, hi+1
		}
		y := func(v float64) float64 {
			return round1(padY + (hi-v)/(hi-lo)*(chartH-2*padY))
		}
		c := chart{Name: g[0].Name, Unit: g[0].Unit, Width: chartW, Height: chartH, Count: len(g),
			MinLabel: fmtNum(lo), MaxLabel: fmtNum(hi), Latest: fmtNum(last.Value), LatestAt: last.At}
		var pts []string
		for _, r := range g {
			x := round1(math.Max(0, math.Min(1, r.At.Sub(from).Seconds()/span)) * chartW)
			pts = append(pts, strconv.FormatFloat(x, 'f', 1, 64)+","+strconv.FormatFloat(y(r.Value), 'f', 1, 64))
			c.Dots = append(c.Dots, dot{x, y(r.Value)})
		}
		c.Points = strings.Join(pts, " ")
		if hasRange {
			c.HasRange, c.RangeY, c.RangeH = true, y(last.High), round1(y(last.Low)-y(last.High))
			c.RangeLabel = fmtNum(last.Low) + "–" + fmtNum(last.High)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b chart) int { return strings.Compare(a.Name+a.Unit, b.Name+b.Unit) })
	return out
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

func fmtNum(f float64) string { return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) }
