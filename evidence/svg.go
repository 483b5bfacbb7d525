package evidence

import (
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/vitalgate/vitalgate"
)

// Diagram is one SVG figure of the report: text-only SVG (no scripts, no external
// references, no CSS), every text node escaped.
type Diagram struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	SVG   string `json:"svg"`
}

// canvas builds an SVG document from boxes, arrows and text.
type canvas struct {
	b    strings.Builder
	w, h int
}

func newCanvas(w, h int, title string) *canvas {
	c := &canvas{w: w, h: h}
	fmt.Fprintf(&c.b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" font-family="sans-serif" font-size="12">`, w, h, w, h)
	c.b.WriteString(`<title>`)
	c.esc(title)
	c.b.WriteString(`</title><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="#444"/></marker></defs>`)
	return c
}

func (c *canvas) esc(s string) { _ = xml.EscapeText(&c.b, []byte(s)) }

// box draws a rectangle with lines of text; gap draws it dashed in red (not built).
func (c *canvas) box(x, y, w, h int, gap bool, lines ...string) {
	stroke, fill, dash := "#335", "#eef2fa", ""
	if gap {
		stroke, fill, dash = "#a33", "#fbeeee", ` stroke-dasharray="6 4"`
	}
	fmt.Fprintf(&c.b, `<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="%s" stroke="%s"%s/>`, x, y, w, h, fill, stroke, dash)
	for i, l := range lines {
		weight := ""
		if i == 0 {
			weight = ` font-weight="bold"`
		}
		c.text(x+8, y+18+i*16, "start", weight, l)
	}
}

func (c *canvas) text(x, y int, anchor, extra, s string) {
	fmt.Fprintf(&c.b, `<text x="%d" y="%d" text-anchor="%s"%s>`, x, y, anchor, extra)
	c.esc(s)
	c.b.WriteString(`</text>`)
}

// arrow draws a labelled arrow from (x1,y1) to (x2,y2).
func (c *canvas) arrow(x1, y1, x2, y2 int, label string) {
	fmt.Fprintf(&c.b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#444" marker-end="url(#arrow)"/>`, x1, y1, x2, y2)
	if label != "" {
		c.text((x1+x2)/2, (y1+y2)/2-4, "middle", ` font-size="10"`, label)
	}
}

func (c *canvas) String() string { return c.b.String() + `</svg>` }

// diagrams draws the four architecture views of §V.B.2 and the charts from the report.
func diagrams(r *Report) []Diagram {
	return []Diagram{
		{ID: "global-system", Title: "Global system view", SVG: globalView(r)},
		{ID: "multi-patient-harm", Title: "Multi-patient harm view", SVG: harmView(r)},
		{ID: "updatability", Title: "Updatability and patchability view", SVG: updateView(r)},
		{ID: "security-use-cases", Title: "Security use case views", SVG: useCaseView(r)},
		{ID: "audit-volume", Title: "Audit volume (entries per day)", SVG: volumeChart(r.State.Audit.Volume)},
	}
}

func globalView(r *Report) string {
	s := r.State
	nodes := max(len(s.Nodes), 1)
	h := max(300, 80+nodes*110)
	c := newCanvas(900, h, "Global system view of this deployment")
	devices := 0
	for k, v := range s.Devices {
		if k != "pending-enrollment" {
			devices += v
		}
	}
	c.box(10, 40, 200, 60, false, "Medical devices", fmt.Sprintf("%d registered", devices), "X.509 from the deployment CA")
	c.box(10, 160, 200, 60, false, "API clients (EHR, apps)", counts(withoutKeys(s.Clients, "disabled", "key-authenticated")))
	store := "not recorded"
	if len(s.Nodes) > 0 {
		store = s.Nodes[0].Store
	}
	c.box(680, 40, 200, 60, false, "Store", store, "sealed resources, audit log")
	c.box(680, 160, 200, 60, false, "Auditor (offline)", "verifies with audit.pub only")
	if len(s.Nodes) == 0 {
		c.box(330, 40, 230, 60, false, "Vitalgate node", "no configuration recorded")
	}
	for i, n := range s.Nodes {
		y := 40 + i*110
		lines := []string{"Node " + n.Node}
		for _, l := range n.Listeners {
			lines = append(lines, l.Name+" "+l.Addr)
		}
		lines = append(lines, strings.Join(n.TLS.Versions, ", "))
		c.box(330, y, 230, 20+16*len(lines), false, lines...)
		c.arrow(210, 70, 330, y+25, "mTLS (HTTPS, MLLP)")
		c.arrow(210, 190, 330, y+40, "OAuth2 bearer")
		c.arrow(560, y+25, 680, 70, "")
		if n.Audit.SyslogAddr != "" {
			c.box(680, 260+i*70, 200, 45, false, "Syslog collector", n.Audit.SyslogAddr)
			c.arrow(560, y+45, 680, 280+i*70, "TLS")
		}
	}
	c.arrow(780, 100, 780, 160, "export")
	return c.String()
}

func harmView(r *Report) string {
	s := r.State
	c := newCanvas(900, 330, "Multi-patient harm view: what one compromised credential reaches")
	c.text(10, 20, "start", ` font-weight="bold"`, "What one compromised credential reaches (counts from this deployment)")
	rows := []struct {
		who, reach string
		n          int
		wide       bool
	}{
		{"Device certificate", "one patient: its current assignment; write only", s.Devices["active"], false},
		{"Clinician client", "its care team; more only with audited emergency access", s.Clients["clinician"], false},
		{"EHR system client", "every patient, within its SMART scopes", s.Clients["ehr-system"], true},
		{"Admin client", "every patient; device reassignment (audited)", s.Clients["admin"], true},
		{"Auditor client", "audit trail only: patients as blind indexes", s.Clients["auditor"], false},
		{"Data dir keys (host)", "every patient: protect the host and keys/", -1, true},
	}
	for i, row := range rows {
		y := 40 + i*46
		count := fmt.Sprintf("%d in this deployment", row.n)
		if row.n < 0 {
			count = "one data dir per deployment"
		}
		c.box(10, y, 230, 38, false, row.who, count)
		c.arrow(240, y+19, 280, y+19, "")
		c.box(280, y, 600, 38, row.wide, row.reach) // red: reaches every patient
	}
	return c.String()
}

func updateView(r *Report) string {
	s := r.State
	c := newCanvas(900, 260, "Updatability and patchability view")
	ver := "not recorded"
	if len(s.Nodes) > 0 {
		ver = s.Nodes[0].Version + " (" + s.Nodes[0].GoVersion + ")"
	}
	c.box(10, 40, 250, 60, false, "Vitalgate binary", ver, "update: replace the binary, restart")
	c.box(320, 40, 250, 60, false, "SBOM", fmt.Sprintf("%d components", len(s.SBOM)), "in this report, vitalgate sbom")
	c.arrow(260, 70, 320, 70, "lists")
	validity := "not recorded"
	if len(s.Nodes) > 0 {
		validity = days(s.Nodes[0].Registry.CertValidity)
	}
	c.box(10, 150, 250, 60, false, "Device certificates", "renewed over EST simplereenroll", "validity "+validity)
	c.box(320, 150, 250, 60, true, "Signed device updates (TUF)", "NOT BUILT: gap")
	c.box(630, 40, 250, 60, true, "Vulnerability posture", "advisories, KEV, patch latency", "NOT BUILT: gap")
	c.arrow(570, 70, 630, 70, "would match")
	return c.String()
}

func useCaseView(r *Report) string {
	s := r.State
	c := newCanvas(900, 300, "Security use case views")
	setting := func(f func(n vitalgate.NodeConfig) string) string {
		if len(s.Nodes) == 0 {
			return "not recorded"
		}
		return f(s.Nodes[0])
	}
	flows := [][]string{
		{"Enroll", fmt.Sprintf("%d awaiting", s.Devices["pending-enrollment"]), "device + one-time secret", "EST simpleenroll", "certificate, audited"},
		{"Send a reading", fmt.Sprintf("%d active devices", s.Devices["active"]), "device certificate (mTLS)", "validate, bind patient", "sealed, stored, audited"},
		{"Read patient data", "tokens " + setting(func(n vitalgate.NodeConfig) string { return days(n.Tokens.AccessTokenTTL) }), "client token (scopes)", "role, scopes, care team", "read, audited"},
		{"Emergency access", "tokens " + setting(func(n vitalgate.NodeConfig) string { return days(n.Tokens.EmergencyTTL) }), "clinician + reason", "short-lived token", "every read audited"},
		{"Verify the audit log", fmt.Sprintf("%d entries", s.Audit.Entries), "auditor, audit.pub", "Merkle tree, checkpoints", "first bad entry named"},
	}
	for i, f := range flows {
		y := 20 + i*55
		c.box(10, y, 160, 40, false, f[0], f[1])
		f = f[1:]
		for j, step := range f[1:] {
			x := 210 + j*230
			c.arrow(x-40, y+20, x, y+20, "")
			c.box(x, y, 190, 40, false, step)
		}
	}
	return c.String()
}

// volumeChart is a bar chart of audit entries per day.
func volumeChart(days []DayCount) string {
	c := newCanvas(900, 220, "Audit entries per day")
	if len(days) == 0 {
		c.text(450, 110, "middle", "", "no audit entries yet")
		return c.String()
	}
	peak := 1
	for _, d := range days {
		peak = max(peak, d.Count)
	}
	bw := 840 / len(days)
	fmt.Fprintf(&c.b, `<line x1="40" y1="180" x2="880" y2="180" stroke="#444"/>`)
	for i, d := range days {
		h := d.Count * 150 / peak
		x := 40 + i*bw
		fmt.Fprintf(&c.b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#5577aa"><title>`, x+1, 180-h, bw-2, h)
		c.esc(fmt.Sprintf("%s: %d", d.Day, d.Count))
		c.b.WriteString(`</title></rect>`)
	}
	c.text(40, 198, "start", ` font-size="10"`, days[0].Day)
	c.text(880, 198, "end", ` font-size="10"`, days[len(days)-1].Day)
	c.text(36, 34, "end", ` font-size="10"`, fmt.Sprint(peak))
	return c.String()
}
