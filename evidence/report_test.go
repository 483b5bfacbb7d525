package evidence_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/evidence"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/node"
)

// deployment is a data dir with a node that has served once.
type deployment struct {
	n    *node.Node
	addr string
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := node.Init(t.Context(), dir, node.InitOptions{Operator: "tester"}, node.Env{}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(t.Context(), dir, node.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return &deployment{n: n, addr: addr}
}

// serve runs the node once until it is ready, then stops it: the node records its
// effective configuration.
func (d *deployment) serve(t *testing.T, tls12 bool) {
	t.Helper()
	cfg := httpapi.DefaultConfig()
	cfg.Addr, cfg.AllowTLS12 = d.addr, tls12
	ctx, cancel := context.WithCancel(t.Context())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- d.n.Serve(ctx, node.Options{HTTP: cfg, Ready: func(string) { close(ready) }}) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Serve never became ready")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func (d *deployment) evidence(t *testing.T) evidence.Deployment {
	t.Helper()
	ed, err := d.n.EvidenceDeployment()
	if err != nil {
		t.Fatal(err)
	}
	return ed
}

func (d *deployment) render(t *testing.T, opt evidence.Options) []byte {
	t.Helper()
	out, err := evidence.Render(t.Context(), d.evidence(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fixedClock(s string) func() time.Time {
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return func() time.Time { return at }
}

func decodeReport(t *testing.T, data []byte) evidence.Report {
	t.Helper()
	var r evidence.Report
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&r); err != nil { // the first JSON value: a signed file has its signature after it
		t.Fatal(err)
	}
	return r
}

func control(t *testing.T, r evidence.Report, id string) evidence.ControlRow {
	t.Helper()
	for _, k := range r.Controls {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("no control %s", id)
	return evidence.ControlRow{}
}

// TestReportStatesEveryRequirement: every FDA category and HIPAA specification has a row
// with a state and evidence (controls with facts and tests, or gaps stated), every route of
// the live table has a threat-model interface, and flipping --tls12 changes the report.
func TestReportStatesEveryRequirement(t *testing.T) {
	d := newDeployment(t)
	before := d.render(t, evidence.Options{Format: evidence.FormatJSON, Now: fixedClock("2026-12-02T08:00:00Z")})
	if r := decodeReport(t, before); control(t, r, "tls").State.Status != evidence.StatusUnknown {
		t.Errorf("before any serve, the TLS state is %s, want unknown", control(t, r, "tls").State.Status)
	}
	d.serve(t, false)
	data := d.render(t, evidence.Options{Format: evidence.FormatJSON, VerifyAudit: true, Now: fixedClock("2026-12-02T08:00:00Z")})
	r := decodeReport(t, data)

	rows := map[string]evidence.RequirementRow{}
	for _, q := range r.Requirements {
		rows[q.Framework+" "+q.Title] = q
		rows[q.Framework+" "+q.Ref] = q
	}
	controls := map[string]evidence.ControlRow{}
	for _, k := range r.Controls {
		controls[k.ID] = k
	}
	var want []string
	for _, c := range fdaCategories {
		want = append(want, "FDA "+c)
	}
	for _, s := range hipaaSpecs {
		want = append(want, "HIPAA "+s)
	}
	for _, w := range want {
		q, ok := rows[w]
		if !ok {
			t.Errorf("%s: no row", w)
			continue
		}
		if q.Status == "" || q.Status == evidence.StatusUnknown || len(q.Controls) == 0 {
			t.Errorf("%s: status %q, controls %v", w, q.Status, q.Controls)
		}
		for _, id := range q.Controls {
			k := controls[id]
			if len(k.State.Facts) == 0 || (k.Gap == "" && len(k.TestResult) == 0) || (k.Gap != "" && k.State.Status != evidence.StatusGap) {
				t.Errorf("%s: control %s has no evidence: %+v", w, id, k)
			}
		}
	}
	if q := rows["FDA Updatability and patchability"]; q.Status != evidence.StatusPartial || len(q.Gaps) == 0 || slices.Contains(q.Gaps, "authenticated-updates") {
		t.Errorf("updatability: %+v; want partial, with its gaps, and authenticated updates built", q)
	}
	if len(r.Gaps) == 0 {
		t.Error("no gaps listed")
	}
	for _, i := range r.Interfaces {
		if i.Interface == "unclassified" {
			t.Errorf("%s %s has no threat-model interface in threats.json", i.Listener, i.Endpoint)
		}
	}
	if len(r.Interfaces) < 10 || len(r.Threats) == 0 || len(r.SBOM) == 0 || len(r.Diagrams) != 5 {
		t.Errorf("interfaces %d, threats %d, SBOM %d, diagrams %d", len(r.Interfaces), len(r.Threats), len(r.SBOM), len(r.Diagrams))
	}
	if v := r.State.Audit.Verification; v == nil || !v.OK || v.Entries == 0 {
		t.Errorf("audit verification = %+v", v)
	}
	tls := control(t, r, "tls")
	if tls.State.Status != evidence.StatusEnforced || !slices.Contains(tls.State.Facts, "TLS versions: TLS 1.3 (1 node)") {
		t.Errorf("TLS 1.3 only: %+v", tls.State)
	}

	d.serve(t, true) // the same node again, with --tls12
	flipped := d.render(t, evidence.Options{Format: evidence.FormatJSON, VerifyAudit: true, Now: fixedClock("2026-12-02T08:00:00Z")})
	tls = control(t, decodeReport(t, flipped), "tls")
	if tls.State.Status != evidence.StatusAttention || !slices.Contains(tls.State.Facts, "TLS versions: TLS 1.2, TLS 1.3 (1 node)") {
		t.Errorf("after --tls12: %+v", tls.State)
	}
}

// timestamps are the generation time in every format.
var timestamps = regexp.MustCompile(`2026-12-02T0[89]:00:00Z`)

// TestReportIsReproducible: the same deployment gives the same bytes at another time, apart
// from the timestamp, in every format.
func TestReportIsReproducible(t *testing.T) {
	d := newDeployment(t)
	d.serve(t, false)
	for _, f := range []string{evidence.FormatHTML, evidence.FormatMD, evidence.FormatJSON, evidence.FormatMDS2} {
		t.Run(f, func(t *testing.T) {
			a := d.render(t, evidence.Options{Format: f, VerifyAudit: true, Now: fixedClock("2026-12-02T08:00:00Z")})
			b := d.render(t, evidence.Options{Format: f, VerifyAudit: true, Now: fixedClock("2026-12-02T09:00:00Z")})
			if bytes.Equal(a, b) {
				t.Fatal("the timestamp is not in the report")
			}
			if !bytes.Equal(timestamps.ReplaceAll(a, nil), timestamps.ReplaceAll(b, nil)) {
				t.Errorf("reports differ beyond the timestamp")
			}
		})
	}
}

// TestSignedReport: a generated report verifies with the data dir's public key, a changed
// byte anywhere is caught, another key is refused; the key's creation and every report's
// digest are in the audit log.
func TestSignedReport(t *testing.T) {
	d := newDeployment(t)
	d.serve(t, false)
	ed := d.evidence(t)
	alog, err := d.n.AuditLog("cli")
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, f := range []string{evidence.FormatHTML, evidence.FormatJSON, evidence.FormatMD, evidence.FormatMDS2} {
		t.Run(f, func(t *testing.T) {
			res, err := evidence.Generate(t.Context(), ed, alog, evidence.Options{Format: f, Operator: "tester"})
			if err != nil {
				t.Fatal(err)
			}
			digests = append(digests, res.Digest)
			key, err := evidence.ReadPublicKey(filepath.Join(ed.Dir, evidence.PublicKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			c, err := evidence.Verify(res.Report, key)
			if err != nil || c.Digest != res.Digest || c.KeyID != res.KeyID {
				t.Fatalf("Verify = %+v, %v; want digest %s", c, err, res.Digest)
			}
			for _, at := range []int{0, len(res.Report) / 3, len(res.Report) / 2, len(res.Report) - 10} {
				bad := bytes.Clone(res.Report)
				bad[at] ^= 0x01
				if _, err := evidence.Verify(bad, key); err == nil {
					t.Errorf("a changed byte at %d of %d verifies", at, len(res.Report))
				}
			}
			if _, err := evidence.Verify(append(bytes.Clone(res.Report), '\n'), key); err == nil {
				t.Error("an appended byte verifies")
			}
			other := evidence.PublicKey{Key: key.Key[:0:0], KeyID: "0000000000000000"}
			if _, err := evidence.Verify(res.Report, other); err == nil {
				t.Error("verifies with another key")
			}
			switch f {
			case evidence.FormatJSON:
				r := decodeReport(t, res.Report)
				if r.Title == "" {
					t.Error("signed JSON report does not decode")
				}
			case evidence.FormatMDS2:
				checkMDS2(t, res.Report)
			case evidence.FormatHTML:
				checkOfflineHTML(t, res.Report)
			}
		})
	}
	// The log holds one key creation and each report's digest.
	var created int
	found := map[string]bool{}
	err = d.n.Store.AuditEntries(t.Context(), 0, 1<<62, func(rec vitalgate.AuditRecord) error {
		e, err := audit.UnmarshalEntry(rec.Data)
		if err != nil {
			return err
		}
		switch e.Subtype {
		case "evidence-key":
			created++
		case "evidence-report":
			for _, dg := range digests {
				if strings.Contains(e.OutcomeDesc, "sha256:"+dg) && e.AgentID == "tester" {
					found[dg] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if created != 1 || len(found) != len(digests) {
		t.Errorf("audit log: %d key creations (want 1), %d of %d report digests", created, len(found), len(digests))
	}
	for _, dg := range digests {
		if _, ok, err := evidence.Recorded(t.Context(), d.n.Store, dg); !ok || err != nil {
			t.Errorf("Recorded(%s) = %v, %v", dg, ok, err)
		}
	}
	if _, ok, err := evidence.Recorded(t.Context(), d.n.Store, strings.Repeat("0", 64)); ok || err != nil {
		t.Errorf("Recorded(unknown digest) = %v, %v", ok, err)
	}
}

// TestVerifyRefusesUnsignedFile: a file without a signature line is refused.
func TestVerifyRefusesUnsignedFile(t *testing.T) {
	d := newDeployment(t)
	signer, _, err := evidence.LoadOrCreateSigner(d.n.Dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = evidence.Verify([]byte("<html></html>\n"), signer.Public())
	if err == nil || errors.Is(err, evidence.ErrTampered) {
		t.Errorf("unsigned file: %v", err)
	}
	p, err := evidence.ParsePublicKey(signer.Public().String())
	if err != nil || p.KeyID != signer.KeyID {
		t.Errorf("public key round trip: %+v, %v", p, err)
	}
}

// checkMDS2 parses the MDS2 CSV: every question answered Yes, No or N/A, the signature the
// last row.
func checkMDS2(t *testing.T, data []byte) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1 // the signature row has one field
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(recs[len(recs)-1][0], "vitalgate-evidence-signature: v1 ed25519 ") {
		t.Errorf("last row %v", recs[len(recs)-1])
	}
	answered := 0
	want := map[string]string{"EMRG-1": "Yes", "STCF-1": "Yes", "CSUP-2": "Yes", "PAUT-2": "Yes", "DTBK-2": "Yes"} // gaps answer No; backup and people's MFA are built
	for _, rec := range recs[2 : len(recs)-1] {
		if len(rec) != 6 || !slices.Contains([]string{"Yes", "No", "N/A"}, rec[3]) {
			t.Errorf("row %v", rec)
		}
		if w, ok := want[rec[0]]; ok && rec[3] != w {
			t.Errorf("%s answered %q, want %q", rec[0], rec[3], w)
		}
		answered++
	}
	if answered < 25 {
		t.Errorf("%d questions answered", answered)
	}
}

// checkOfflineHTML: the HTML loads nothing from anywhere and runs no script; its CSP says so.
func checkOfflineHTML(t *testing.T, data []byte) {
	t.Helper()
	s := string(data)
	if !strings.Contains(s, `<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;sha256-`) {
		t.Error("no strict CSP meta")
	}
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(s)
	if style == nil {
		t.Fatal("no style element")
	}
	sum := sha256.Sum256([]byte(style[1]))
	if !strings.Contains(s, "style-src &#39;sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"&#39;") {
		t.Error("the CSP does not allow exactly the page's style sheet by its hash")
	}
	for _, bad := range []string{"<script", " src=", "href=", "url(http", "@import", "<link", "<img", "<iframe"} {
		if strings.Contains(s, bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}
	if n := strings.Count(s, "<svg "); n != 5 {
		t.Errorf("%d inline SVG figures, want 5", n)
	}
	if strings.Count(s, "http://") != strings.Count(s, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("a URL other than the SVG namespace")
	}
	_ = os.WriteFile(filepath.Join(t.TempDir(), "r.html"), data, 0o600)
}

// TestAssessmentAndResultsIncluded: an assessment file and a test results file given with
// the report appear in it, and a high finding draws attention.
func TestAssessmentAndResultsIncluded(t *testing.T) {
	d := newDeployment(t)
	d.serve(t, false)
	work := t.TempDir()
	assessFile := filepath.Join(work, "assess.json")
	results := filepath.Join(work, "results.json")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(assessFile, []byte(`{"target":"https://vg.example:8443","started":"2026-12-02T07:00:00Z",
		"findings":[{"id":"tls-x","title":"Weak <thing>","severity":"high"},{"id":"hdr","title":"Header","severity":"low"}]}`), 0o600))
	must(os.WriteFile(results, []byte(`{"Action":"fail","Package":"github.com/vitalgate/vitalgate/seal","Test":"TestAAD"}`+"\n"), 0o600))
	opt := evidence.Options{Format: evidence.FormatJSON, AssessFile: assessFile, ResultsFile: results, Now: fixedClock("2026-12-02T08:00:00Z")}
	r := decodeReport(t, d.render(t, opt))
	a := control(t, r, "outside-in-assessment")
	if a.State.Status != evidence.StatusAttention || !strings.Contains(strings.Join(a.State.Facts, " "), "high 1, low 1") {
		t.Errorf("assessment: %+v", a.State)
	}
	k := control(t, r, "stored-data-integrity")
	if i := slices.IndexFunc(k.TestResult, func(tr evidence.TestRow) bool { return tr.Name == "seal.TestAAD" }); i < 0 || k.TestResult[i].Result != "fail" {
		t.Errorf("test results: %+v", k.TestResult)
	}
	opt.Format = evidence.FormatHTML
	html := string(d.render(t, opt))
	if !strings.Contains(html, "Weak &lt;thing&gt;") || strings.Contains(html, "Weak <thing>") {
		t.Error("the assessment's findings are not in the HTML, escaped")
	}
	opt.AssessFile = results // not an assessment
	if _, err := evidence.Render(t.Context(), d.evidence(t), opt); err == nil {
		t.Error("a file that is not an assessment was accepted")
	}
}

// TestTwoNodesAreStatedApart: when the nodes of one store run with different settings, the
// report names each node's setting instead of one value for all.
func TestTwoNodesAreStatedApart(t *testing.T) {
	d := newDeployment(t)
	d.serve(t, false)
	first := d.addr
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	_ = ln.Close()
	d.serve(t, true) // a second node (another address) on the same store, with TLS 1.2
	r := decodeReport(t, d.render(t, evidence.Options{Format: evidence.FormatJSON, Now: fixedClock("2026-12-02T08:00:00Z")}))
	if len(r.Nodes) != 2 {
		t.Fatalf("%d nodes, want 2", len(r.Nodes))
	}
	tls := control(t, r, "tls")
	facts := strings.Join(tls.State.Facts, "\n")
	if tls.State.Status != evidence.StatusAttention || !strings.Contains(facts, "TLS versions: TLS 1.3 on ") ||
		!strings.Contains(facts, "TLS versions: TLS 1.2, TLS 1.3 on ") || !strings.Contains(facts, first) || !strings.Contains(facts, d.addr) {
		t.Errorf("two nodes, one with TLS 1.2: %s\n%s", tls.State.Status, facts)
	}
}
