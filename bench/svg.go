package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// WriteSVG draws a horizontal bar chart of the ratio of every row that has a baseline: one
// bar per row, a line at 100% (the baseline) and a mark at the row's ratio target when it
// has one. Bars of rows whose smaller values are better (latencies) are drawn in another
// colour, since for them a smaller ratio is the better one. The SVG is self-contained.
func (rep *Report) WriteSVG(w io.Writer) error {
	var rows []Row
	for _, r := range rep.Rows {
		if r.HasBaseline() && !math.IsNaN(r.Ratio()) && !math.IsInf(r.Ratio(), 0) {
			rows = append(rows, r)
		}
	}
	const (
		labelW = 330
		barW   = 420
		rowH   = 26
		top    = 52
		right  = 70
	)
	maxRatio := 1.0
	for _, r := range rows {
		maxRatio = max(maxRatio, r.Ratio())
	}
	maxRatio = math.Ceil(maxRatio*4) / 4 // next quarter
	x := func(ratio float64) float64 { return labelW + ratio/maxRatio*barW }
	height := top + len(rows)*rowH + 40
	width := labelW + barW + right
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	title := "Vitalgate bench: figure / same-run baseline"
	if rep.Machine.CPU != "" {
		title += " — " + rep.Machine.CPU
	}
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	if len(rows) == 0 {
		fmt.Fprintf(&b, `<text x="10" y="%d">no scenario with a baseline was run</text>`+"\n", top)
	}
	// Grid: every 25%, labelled every 50%.
	for g := 0.0; g <= maxRatio+1e-9; g += 0.25 {
		gx := x(g)
		stroke := "#e0e0e0"
		if g == 1 {
			stroke = "#333333"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", gx, top-8, gx, top+len(rows)*rowH, stroke)
		if math.Mod(g, 0.5) == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555555">%s</text>`+"\n", gx, top-12, formatPercent(g))
		}
	}
	for i, r := range rows {
		y := top + i*rowH
		label := r.Scenario + ": " + r.Metric
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+rowH/2+4, html.EscapeString(label))
		fill := "#2b7bb9"
		if r.Lower {
			fill = "#9b6bb5"
		}
		if met, ok := r.Met(); ok && !met {
			fill = "#d9822b"
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`+"\n",
			labelW, y+4, x(r.Ratio())-labelW, rowH-8, fill,
			html.EscapeString(fmt.Sprintf("%s %s: %s %s vs %s %s", r.Scenario, r.Metric, formatNumber(r.Value), r.Unit, formatNumber(r.Baseline), r.Unit)))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", x(r.Ratio())+4, y+rowH/2+4, formatPercent(r.Ratio()))
		if t := r.Target; t != nil && t.Of == "ratio" {
			tx := x(t.Threshold)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c0392b" stroke-width="2" stroke-dasharray="3,2"/>`+"\n", tx, y+2, tx, y+rowH-2)
		}
	}
	ly := top + len(rows)*rowH + 24
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#555555">blue: higher is better; purple: latency (lower is better); orange: target missed; red dashes: target ratio; black line: baseline (100%%)</text>`+"\n", ly)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
