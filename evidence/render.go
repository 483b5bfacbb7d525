package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"
)

// Formats of a report.
const (
	FormatHTML = "html"
	FormatMD   = "md"
	FormatJSON = "json"
	FormatMDS2 = "mds2" // the MDS2 (2019) answers as CSV
)

// render writes r in format.
func render(r *Report, form MDS2Form, format string) ([]byte, error) {
	switch format {
	case FormatJSON:
		b, err := json.MarshalIndent(r, "", "  ")
		return append(b, '\n'), err
	case FormatMD:
		return renderMD(r), nil
	case FormatHTML:
		return renderHTML(r)
	case FormatMDS2:
		return renderMDS2(r, form)
	}
	return nil, fmt.Errorf("unknown format %q (want html, md, json or mds2)", format)
}

// mdCell makes s safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
	return s
}

func renderMD(r *Report) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# %s\n\nDeployment `%s`, generated %s.\n\n", r.Title, r.Deployment, r.GeneratedAt.Format(time.RFC3339))
	p("## Requirements\n\n| Framework | Requirement | Status | Controls | Gaps |\n|---|---|---|---|---|\n")
	for _, q := range r.Requirements {
		p("| %s | %s %s | %s | %s | %s |\n", q.Framework, mdCell(q.Ref), mdCell(q.Title), q.Status, strings.Join(q.Controls, ", "), strings.Join(q.Gaps, ", "))
	}
	p("\n## Controls\n")
	for _, k := range r.Controls {
		p("\n### %s (`%s`): %s\n\n%s\n\n", mdCell(k.Title), k.ID, k.State.Status, k.Implements)
		for _, f := range k.State.Facts {
			p("- %s\n", mdCell(f))
		}
		if len(k.TestResult) > 0 {
			p("\nTests:")
			for _, t := range k.TestResult {
				if t.Result != "" {
					p(" `%s` (%s)", t.Name, t.Result)
				} else {
					p(" `%s`", t.Name)
				}
			}
			p("\n")
		}
	}
	p("\n## Gaps\n\n")
	for _, g := range r.Gaps {
		p("- **%s** (%s): %s\n", mdCell(g.Title), strings.Join(g.Requirements, ", "), mdCell(g.Gap))
	}
	p("\n## Nodes\n\n| Node | Recorded | Version | TLS | FIPS | Listeners |\n|---|---|---|---|---|---|\n")
	for _, n := range r.Nodes {
		p("| %s | %s | %s | %s | %t | %s |\n", mdCell(n.Node), n.RecordedAt.Format(time.RFC3339), mdCell(n.Version), n.TLS, n.FIPS, mdCell(strings.Join(n.Listeners, ", ")))
	}
	p("\n## Interfaces\n\n| Interface | Listener | Address | Endpoint | Authentication | Permission |\n|---|---|---|---|---|---|\n")
	for _, i := range r.Interfaces {
		p("| %s | %s | %s | %s | %s | %s |\n", i.Interface, i.Listener, mdCell(i.Addr), mdCell(i.Endpoint), mdCell(i.Auth), i.Permission)
	}
	p("\n## Threat model (STRIDE)\n\n| Interface | STRIDE | Threat | Mitigation | Controls |\n|---|---|---|---|---|\n")
	for _, t := range r.Threats {
		p("| %s | %s | %s | %s | %s |\n", t.Interface, t.STRIDE, mdCell(t.Threat), mdCell(t.Mitigation), strings.Join(t.Controls, ", "))
	}
	p("\n## Software bill of materials\n\n| Component | Version | Package URL | Support | End of support |\n|---|---|---|---|---|\n")
	for _, c := range r.SBOM {
		p("| %s | %s | %s | %s | %s |\n", mdCell(c.Name), mdCell(c.Version), mdCell(c.PURL), mdCell(c.Support), mdCell(c.EndOfSupport))
	}
	if a := r.State.Assessment; a != nil {
		p("\n## Outside-in assessment of %s\n\n| Severity | Finding |\n|---|---|\n", mdCell(a.Target))
		for _, f := range a.Findings {
			p("| %s | %s |\n", f.Severity, mdCell(f.Title))
		}
	}
	p("\n## Patch latency and vulnerabilities\n\nNot measured: vulnerability posture and updates are not built (see Gaps).\n")
	p("\n## Figures\n\nThe architecture views and charts are SVG in the HTML and JSON formats.\n")
	return b.Bytes()
}

// htmlStyle is the report's only style sheet; the page's CSP allows exactly it by hash.
const htmlStyle = `body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;width:100%;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left;font-size:13px}
th{background:#eef2fa}.enforced{color:#161}.attention{color:#a60}.unknown{color:#666}.partial{color:#a60}.not-run{color:#666}.gap{color:#a22;font-weight:bold}
figure{margin:1em 0}svg{max-width:100%;height:auto}code{font-size:12px}`

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"date": func(t time.Time) string { return t.Format(time.RFC3339) },
	"join": strings.Join,
	"svg": func(s string) template.HTML {
		return template.HTML(s) // #nosec G203 -- SVG built by this package from escaped text only (svg.go)
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{.CSP}}">
<meta name="referrer" content="no-referrer">
<title>{{.R.Title}}</title><style>{{.Style}}</style></head><body>
<h1>{{.R.Title}}</h1>
<p>Deployment <code>{{.R.Deployment}}</code>, generated {{date .R.GeneratedAt}}. Signed with Ed25519; check with <code>vitalgate evidence verify FILE</code>.</p>
<h2>Requirements</h2>
<table><tr><th>Framework</th><th>Requirement</th><th>Status</th><th>Controls</th><th>Gaps</th></tr>
{{range .R.Requirements}}<tr><td>{{.Framework}}</td><td>{{.Ref}} {{.Title}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{join .Controls ", "}}</td><td>{{join .Gaps ", "}}</td></tr>
{{end}}</table>
<h2>Controls</h2>
<table><tr><th>Control</th><th>What Vitalgate implements</th><th>State on this deployment</th><th>Tests</th></tr>
{{range .R.Controls}}<tr id="{{.ID}}"><td><b>{{.Title}}</b><br><code>{{.ID}}</code></td><td>{{.Implements}}</td><td><span class="{{.State.Status}}">{{.State.Status}}</span><ul>{{range .State.Facts}}<li>{{.}}</li>{{end}}</ul></td><td>{{range .TestResult}}<code>{{.Name}}</code>{{if .Result}} ({{.Result}}){{end}}<br>{{end}}</td></tr>
{{end}}</table>
<h2>Gaps</h2><ul>{{range .R.Gaps}}<li><b>{{.Title}}</b> ({{join .Requirements ", "}}): {{.Gap}}</li>{{end}}</ul>
<h2>Architecture views</h2>
{{range .R.Diagrams}}<figure id="{{.ID}}"><figcaption><b>{{.Title}}</b></figcaption>{{svg .SVG}}</figure>
{{end}}
<h2>Patch latency and vulnerabilities by severity</h2><p class="gap">Not measured: vulnerability posture and updates are not built (see Gaps).</p>
<h2>Nodes</h2>
<table><tr><th>Node</th><th>Recorded</th><th>Version</th><th>TLS</th><th>FIPS 140-3</th><th>Listeners</th></tr>
{{range .R.Nodes}}<tr><td>{{.Node}}</td><td>{{date .RecordedAt}}</td><td>{{.Version}}</td><td>{{.TLS}}</td><td>{{.FIPS}}</td><td>{{join .Listeners ", "}}</td></tr>
{{end}}</table>
<h2>Interfaces and their authentication</h2>
<table><tr><th>Interface</th><th>Listener</th><th>Address</th><th>Endpoint</th><th>Authentication</th><th>Permission</th></tr>
{{range .R.Interfaces}}<tr><td>{{.Interface}}</td><td>{{.Listener}}</td><td>{{.Addr}}</td><td><code>{{.Endpoint}}</code></td><td>{{.Auth}}</td><td>{{.Permission}}</td></tr>
{{end}}</table>
<h2>Threat model (STRIDE per interface)</h2>
<table><tr><th>Interface</th><th>STRIDE</th><th>Threat</th><th>Mitigation</th><th>Controls</th></tr>
{{range .R.Threats}}<tr><td>{{.Interface}}</td><td>{{.STRIDE}}</td><td>{{.Threat}}</td><td>{{.Mitigation}}</td><td>{{join .Controls ", "}}</td></tr>
{{end}}</table>
{{with .R.State.Assessment}}<h2>Outside-in assessment of {{.Target}}</h2>
<table><tr><th>Severity</th><th>Finding</th><th>Detail</th></tr>{{range .Findings}}<tr><td>{{.Severity}}</td><td>{{.Title}}</td><td>{{.Detail}}</td></tr>{{end}}</table>{{end}}
<h2>Software bill of materials</h2>
<table><tr><th>Component</th><th>Version</th><th>Package URL</th><th>SHA-256</th><th>Support</th><th>End of support</th></tr>
{{range .R.SBOM}}<tr><td>{{.Name}}</td><td>{{.Version}}</td><td><code>{{.PURL}}</code></td><td><code>{{.SHA256}}</code></td><td>{{.Support}}</td><td>{{.EndOfSupport}}</td></tr>
{{end}}</table>
</body></html>
`))

func renderHTML(r *Report) ([]byte, error) {
	sum := sha256.Sum256([]byte(htmlStyle))
	csp := "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; img-src 'none'; form-action 'none'; base-uri 'none'"
	var b bytes.Buffer
	err := htmlTemplate.Execute(&b, struct {
		R     *Report
		CSP   string
		Style template.CSS
	}{r, csp, template.CSS(htmlStyle)}) // #nosec G203 -- a constant of this package
	return b.Bytes(), err
}

// renderMDS2 answers the MDS2 questions as CSV: id, section, question, answer, note, evidence.
func renderMDS2(r *Report, form MDS2Form) ([]byte, error) {
	rows := map[string]ControlRow{}
	for _, k := range r.Controls {
		rows[k.ID] = k
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"ID", "Section", "Question", "Answer", "Note", "Evidence"})
	_ = w.Write([]string{"DOC", "Form", form.Edition, "", form.Note, "Vitalgate evidence report of " + r.Deployment + ", " + r.GeneratedAt.Format(time.RFC3339)})
	for _, q := range form.Questions {
		answer, note, ev := q.Answer, q.Note, ""
		if q.Control != "" {
			k := rows[q.Control]
			ev = "control " + k.ID + " (" + string(k.State.Status) + "): " + strings.Join(k.State.Facts, "; ")
			if k.State.Status == StatusGap {
				answer = "No"
				if q.NoteIfGap != "" {
					note = q.NoteIfGap
				}
			} else {
				answer = "Yes"
			}
		}
		_ = w.Write([]string{q.ID, q.Section, q.Question, answer, csvCell(note), csvCell(ev)})
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// csvCell keeps a spreadsheet from reading a cell as a formula.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
