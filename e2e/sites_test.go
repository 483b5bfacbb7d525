package e2e_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate/mllp"
)

// siteClient is an API client registered from the command line, with its secret.
type siteClient struct{ id, secret string }

func addSiteClient(t *testing.T, dir, id, role, site string) siteClient {
	t.Helper()
	secret := strings.TrimSpace(run(t, "client", "add", "--data", dir, "--id", id, "--role", role, "--site", site))
	return siteClient{id, secret}
}

// token returns c's access token (all its role allows) for its own site.
func (s *server) token(t *testing.T, c siteClient) string {
	t.Helper()
	st, tok, body := s.tokenFor(t, c, "")
	if st != 200 || tok == "" {
		t.Fatalf("token of %s: %d %s", c.id, st, body)
	}
	return tok
}

// tokenFor asks for c's access token for one of its sites (the site parameter; none when
// empty) and returns the status, the token and the body.
func (s *server) tokenFor(t *testing.T, c siteClient, site string) (int, string, string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if site != "" {
		form.Set("site", site)
	}
	req, _ := http.NewRequest("POST", s.url+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.id, c.secret)
	resp, err := s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(body, &tok)
	return resp.StatusCode, tok.AccessToken, string(body)
}

// get sends an authenticated GET and returns status and body.
func (s *server) get(t *testing.T, token, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// createPatientAs creates a Patient with one identifier and returns its id and status.
func (s *server) createPatientAs(t *testing.T, token, system, value string) (int, string) {
	t.Helper()
	body := `{"resourceType":"Patient","identifier":[{"system":"` + system + `","value":"` + value + `"}]}`
	req, _ := http.NewRequest("POST", s.url+"/fhir/Patient", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&p)
	return resp.StatusCode, p.ID
}

// tokenSite reads the site claim of an access token (its payload, unverified: the server
// verifies it).
func tokenSite(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Site string `json:"site"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c.Site
}

// sendMLLP sends one HL7 message over MLLP/TLS with the device certificate and returns the
// ACK's MSA-1 code.
func sendMLLP(t *testing.T, s *server, addr string, cert tls.Certificate, msg []byte) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: s.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	msg = bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\r")), []byte("\n"), []byte("\r"))
	if _, err := conn.Write(append(append([]byte{0x0b}, msg...), 0x1c, 0x0d)); err != nil {
		t.Fatal(err)
	}
	ack, err := bufio.NewReader(conn).ReadBytes(0x1c)
	if err != nil {
		t.Fatalf("reading the ACK: %v", err)
	}
	for _, seg := range strings.Split(string(ack), "\r") {
		if f := strings.Split(strings.TrimLeft(seg, "\x0b"), "|"); len(f) > 1 && f[0] == "MSA" {
			return f[1]
		}
	}
	t.Fatalf("no MSA in ACK %q", ack)
	return ""
}

// dataKeys returns each stored data key (hex patient index → wrapped key) of site.
func dataKeys(t *testing.T, dir, site string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "vitalgate.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT patient_index, wrapped FROM data_keys WHERE site = ?`, site)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var idx, wrapped []byte
		if err := rows.Scan(&idx, &wrapped); err != nil {
			t.Fatal(err)
		}
		out[hex.EncodeToString(idx)] = hex.EncodeToString(wrapped)
	}
	return out
}

// TestTwoSitesOnOneServer: two hospitals on one server. Every cross-site attempt (token,
// search, read, device write, assignment, HL7 PID-3, audit API) is refused and audited; an
// identified (shared) device writes for two patients of its site and is refused for a third
// of the other site; rotating one site's keys leaves the other site's keys untouched.
func TestTwoSitesOnOneServer(t *testing.T) {
	dir := initDir(t)
	run(t, "site", "add", "--data", dir, "--id", "a", "--name", "Hospital A")
	run(t, "site", "add", "--data", dir, "--id", "b", "--name", "Hospital B")
	run(t, "model", "add", "--data", dir, "--id", "gluco-1", "--binding", "identified")
	ehrA, ehrB := addSiteClient(t, dir, "ehr-a", "ehr-system", "a"), addSiteClient(t, dir, "ehr-b", "ehr-system", "b")
	adminA, adminB := addSiteClient(t, dir, "admin-a", "admin", "a"), addSiteClient(t, dir, "admin-b", "admin", "b")
	audA, audB := addSiteClient(t, dir, "aud-a", "auditor", "a"), addSiteClient(t, dir, "aud-b", "auditor", "b")
	mllpAddr := freeAddr(t)
	srv := startServerAt(t, dir, freeAddr(t), "--mllp-addr", mllpAddr)

	// Tokens carry their client's site.
	tokA, tokB := srv.token(t, ehrA), srv.token(t, ehrB)
	if tokenSite(t, tokA) != "a" || tokenSite(t, tokB) != "b" {
		t.Fatalf("token sites %q, %q", tokenSite(t, tokA), tokenSite(t, tokB))
	}
	admA, admB := srv.token(t, adminA), srv.token(t, adminB)
	audTokA, audTokB := srv.token(t, audA), srv.token(t, audB)

	// Patients: the same MRN in both hospitals (identifiers are unique per site, not across).
	const mrn = "urn:oid:1.2.3.4"
	st, pa1 := srv.createPatientAs(t, admA, mrn, "1001")
	if st != 201 {
		t.Fatalf("patient of a: %d", st)
	}
	_, pa2 := srv.createPatientAs(t, admA, mrn, "1002")
	st, pb1 := srv.createPatientAs(t, admB, mrn, "1001")
	if st != 201 {
		t.Fatalf("the same MRN in site b: %d, want 201", st)
	}
	if st, _ := srv.createPatientAs(t, admA, mrn, "1001"); st != 409 {
		t.Fatalf("the same MRN twice in site a: %d, want 409", st)
	}
	hl7System := mllp.AuthoritySystem("Imaginary Hospital")
	srv.createPatientAs(t, admA, hl7System, "789567") // PID-3 of the HL7 sample: a patient of site a only

	// Devices: dev-a of a, dev-b of b, each assigned to its own site's patient.
	secretA := strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", "dev-a", "--site", "a", "--patient", pa1))
	secretB := strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", "dev-b", "--site", "b", "--patient", pb1))
	certA, certB := srv.enroll(t, "dev-a", secretA), srv.enroll(t, "dev-b", secretB)
	now := time.Now().Add(-time.Minute)
	st, body, _, err := post(t.Context(), srv.client(&certA), srv.url+"/fhir/Observation", observation(pa1, "dev-a", "72", now))
	if err != nil || st != 201 {
		t.Fatalf("dev-a for its patient: %d %s %v", st, body, err)
	}
	var obsA struct {
		ID   string
		Meta struct {
			Tag []struct{ System, Code string }
		}
	}
	_ = json.Unmarshal(body, &obsA)
	if len(obsA.Meta.Tag) != 1 || obsA.Meta.Tag[0].System != "urn:vitalgate:site" || obsA.Meta.Tag[0].Code != "a" {
		t.Errorf("stored Observation's site tag: %+v", obsA.Meta.Tag)
	}

	// A device of b can never write for a patient of a (FHIR).
	if st, body, _, _ := post(t.Context(), srv.client(&certB), srv.url+"/fhir/Observation", observation(pa1, "dev-b", "80", now)); st != 403 {
		t.Errorf("dev-b for a patient of a: %d %s, want 403", st, body)
	}
	// The registry refuses to assign b's device to a's patient.
	if _, errOut, err := runErr("device", "assign", "--data", dir, "--id", "dev-b", "--patient", pa1); err == nil {
		t.Errorf("device assign across sites succeeded")
	} else if !strings.Contains(errOut, "another site") {
		t.Errorf("device assign across sites: %s", errOut)
	}

	// Reads and searches of b's client never reach a's records.
	for _, path := range []string{"/fhir/Observation/" + obsA.ID, "/fhir/Patient/" + pa1, "/fhir/Device/dev-a", "/fhir/Organization/a"} {
		if st, body := srv.get(t, tokB, path); st != 404 {
			t.Errorf("b reads %s: %d %s, want 404", path, st, body)
		}
		if st, body := srv.get(t, tokA, path); st != 200 {
			t.Errorf("a reads %s: %d %s, want 200", path, st, body)
		}
	}
	if st, body := srv.get(t, tokB, "/fhir/Organization/b"); st != 200 || !strings.Contains(body, "Hospital B") {
		t.Errorf("b reads its Organization: %d %s", st, body)
	}
	if st, body := srv.get(t, tokB, "/fhir/Observation?patient="+pa1); st != 200 || strings.Contains(body, obsA.ID) {
		t.Errorf("b searches a's patient: %d %s", st, body)
	}
	// A health system's EHR serving both hospitals: one token per site, each within its site.
	hie := addSiteClient(t, dir, "hie", "ehr-system", "a,b")
	for _, tt := range []struct{ site, reads, refused string }{{"", pa1, pb1}, {"a", pa1, pb1}, {"b", pb1, pa1}} {
		st, tok, body := srv.tokenFor(t, hie, tt.site)
		if st != 200 || !strings.Contains(body, `"site":"`+cmp.Or(tt.site, "a")+`"`) {
			t.Fatalf("hie's token for site %q: %d %s", tt.site, st, body)
		}
		if st, body := srv.get(t, tok, "/fhir/Patient/"+tt.reads); st != 200 {
			t.Errorf("hie (site %q) reads its patient: %d %s", tt.site, st, body)
		}
		if st, body := srv.get(t, tok, "/fhir/Patient/"+tt.refused); st != 404 {
			t.Errorf("hie (site %q) reads the other site's patient: %d %s, want 404", tt.site, st, body)
		}
	}
	for _, site := range []string{"c", "*"} {
		if st, _, body := srv.tokenFor(t, hie, site); st != 400 || !strings.Contains(body, "does not act within site") {
			t.Errorf("hie's token for site %q: %d %s, want 400", site, st, body)
		}
	}
	if st, _, body := srv.tokenFor(t, ehrA, "b"); st != 400 {
		t.Errorf("a's one-site EHR asks for site b: %d %s, want 400", st, body)
	}
	if _, errOut, err := runErr("client", "add", "--data", dir, "--id", "doc-ab", "--role", "clinician", "--site", "a,b"); err == nil ||
		!strings.Contains(errOut, "one clinician client per site") {
		t.Errorf("a clinician of two sites: %v %s", err, errOut)
	}
	st, body2 := srv.get(t, tokB, "/fhir/Patient?identifier="+url.QueryEscape(mrn+"|1001"))
	if st != 200 || !strings.Contains(body2, pb1) || strings.Contains(body2, pa1) {
		t.Errorf("b searches the shared MRN: %d %s", st, body2)
	}

	// An identified (shared) device of a writes for two patients of a, never for b's.
	gluco := strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", "gl-a", "--site", "a", "--model", "gluco-1"))
	certG := srv.enroll(t, "gl-a", gluco)
	for _, p := range []string{pa1, pa2} {
		if st, body, _, _ := post(t.Context(), srv.client(&certG), srv.url+"/fhir/Observation", observation(p, "gl-a", "90", now)); st != 201 {
			t.Errorf("identified device for %s of its site: %d %s", p, st, body)
		}
	}
	if st, body, _, _ := post(t.Context(), srv.client(&certG), srv.url+"/fhir/Observation", observation(pb1, "gl-a", "90", now)); st != 403 {
		t.Errorf("identified device for a patient of b: %d %s, want 403", st, body)
	}

	// HL7 PID-3 resolves within the sending device's site: b's gateway naming an MRN only a
	// has is refused.
	data, err := os.ReadFile(samplePath(t, "02_ipf_pcd01_nibp.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	gw := strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", "ACDE48234567ABCD", "--site", "b", "--patient", pb1))
	certGW := srv.enroll(t, "ACDE48234567ABCD", gw)
	if code := sendMLLP(t, srv, mllpAddr, certGW, recent(data, time.Now().UTC().Add(-time.Minute))); code == "AA" {
		t.Errorf("HL7 from b naming a's patient (PID-3): %s, want a refusal", code)
	}

	// The audit API: each site auditor sees its own site, with every refusal above.
	// (Repeated refusals of one kind are folded into one entry by the audit log: the first is
	// written at once, the count later.)
	waitFor(t, 10*time.Second, "b's attempts on a's records to be in a's audit", func() bool {
		_, body := srv.get(t, audTokA, "/fhir/AuditEvent?agent=ehr-b&outcome=4")
		return strings.Contains(body, "Observation/"+obsA.ID) && strings.Contains(body, "Organization/a") &&
			strings.Contains(body, "cross-site")
	})
	_, refusedB := srv.get(t, audTokB, "/fhir/AuditEvent?outcome=4")
	for _, who := range []string{"dev-b", "ACDE48234567ABCD"} {
		if !strings.Contains(refusedB, `"value":"`+who+`"`) {
			t.Errorf("b's auditor does not see the refusal of %s: %s", who, refusedB)
		}
	}
	_, identified := srv.get(t, audTokA, "/fhir/AuditEvent?agent=gl-a&action=C")
	if strings.Count(identified, "patient identified by subject reference in site a") != 2 {
		t.Errorf("identified writes not audited with their resolution: %s", identified)
	}

	// Care units: the shared device placed in a's ICU writes only for patients admitted to it.
	run(t, "unit", "add", "--data", dir, "--site", "a", "--id", "icu", "--name", "Intensive care")
	run(t, "device", "place", "--data", dir, "--id", "gl-a", "--unit", "icu")
	run(t, "patient", "admit", "--data", dir, "--site", "a", "--id", pa1, "--unit", "icu")
	if _, errOut, err := runErr("patient", "admit", "--data", dir, "--site", "b", "--id", pb1, "--unit", "icu"); err == nil || !strings.Contains(errOut, "no care unit") {
		t.Errorf("admitting b's patient to a's unit: %v %s", err, errOut)
	}
	waitFor(t, 5*time.Second, "the device's care unit to hold", func() bool {
		st, _, _, _ := post(t.Context(), srv.client(&certG), srv.url+"/fhir/Observation", observation(pa2, "gl-a", "91", now))
		return st == 403
	})
	if st, body, _, _ := post(t.Context(), srv.client(&certG), srv.url+"/fhir/Observation", observation(pa1, "gl-a", "92", now)); st != 201 {
		t.Errorf("the ICU's device for a patient admitted to the ICU: %d %s", st, body)
	}
	if st, body, _, _ := post(t.Context(), srv.client(&certG), srv.url+"/fhir/Observation", observation(pa2, "gl-a", "93", now)); st != 403 || !strings.Contains(string(body), "not admitted to this device's care unit") {
		t.Errorf("the ICU's device for a patient not admitted to it: %d %s, want 403", st, body)
	}
	run(t, "patient", "discharge", "--data", dir, "--site", "a", "--id", pa1)
	if st, body, _, _ := post(t.Context(), srv.client(&certG), srv.url+"/fhir/Observation", observation(pa1, "gl-a", "94", now)); st != 403 {
		t.Errorf("the ICU's device for a discharged patient: %d %s, want 403", st, body)
	}
	waitFor(t, 10*time.Second, "the unit-bound write in a's audit", func() bool {
		_, body := srv.get(t, audTokA, "/fhir/AuditEvent?agent=gl-a&action=C")
		return strings.Contains(body, "admitted to its care unit icu")
	})
	run(t, "device", "place", "--data", dir, "--id", "gl-a", "--none")
	st, allB := srv.get(t, audTokB, "/fhir/AuditEvent?_count=1000")
	if st != 200 {
		t.Fatalf("b's audit search: %d", st)
	}
	for _, theirs := range []string{obsA.ID, "dev-a", "gl-a", "ehr-a", "admin-a", "aud-a"} {
		if strings.Contains(allB, theirs) {
			t.Errorf("b's auditor sees %q of site a", theirs)
		}
	}
	// An inclusion proof hands out the entry itself: never another site's.
	if st, _ := srv.get(t, audTokB, "/audit/proof/inclusion?index=0&size=1"); st != 404 {
		t.Errorf("b's auditor asks for entry 0 (not b's): %d, want 404", st)
	}

	// Keys per site: rotating a's key rewraps a's data keys only.
	beforeA, beforeB := dataKeys(t, dir, "a"), dataKeys(t, dir, "b")
	if len(beforeA) == 0 || len(beforeB) == 0 {
		t.Fatalf("data keys: %d of a, %d of b", len(beforeA), len(beforeB))
	}
	_, errOut, err := runErr("keys", "rotate", "--data", dir, "--site", "a")
	if err != nil {
		t.Fatalf("keys rotate --site a: %v %s", err, errOut)
	}
	afterA, afterB := dataKeys(t, dir, "a"), dataKeys(t, dir, "b")
	for idx, w := range beforeA {
		if afterA[idx] == w {
			t.Errorf("a's data key %s was not rewrapped", idx)
		}
	}
	for idx, w := range beforeB {
		if afterB[idx] != w {
			t.Errorf("b's data key %s changed in a's rotation", idx)
		}
	}
	// Both sites' data stays readable on the running server (it loads a's new key).
	if st, body := srv.get(t, tokA, "/fhir/Observation/"+obsA.ID); st != 200 {
		t.Errorf("a's observation after a's rotation: %d %s", st, body)
	}
	if st, body := srv.get(t, tokB, "/fhir/Patient/"+pb1); st != 200 {
		t.Errorf("b's patient after a's rotation: %d %s", st, body)
	}
	if st, body := srv.get(t, admA, "/fhir/Patient/"+pa2); st != 200 {
		t.Errorf("a's patient after a's rotation: %d %s", st, body)
	}
	// A site's export holds its own resources only, and a patient id names a patient of it.
	exportA, exportB := exportIDs(t, dir, "--site", "a"), exportIDs(t, dir, "--site", "b")
	if exportA[obsA.ID] != 1 || exportB[obsA.ID] != 0 || exportA[pb1] != 0 || exportB[pb1] != 1 {
		t.Errorf("per-site export: a has %d of a's observation and %d of b's patient; b has %d and %d", exportA[obsA.ID], exportA[pb1], exportB[obsA.ID], exportB[pb1])
	}
	if got := exportIDs(t, dir, "--site", "a", "--patient", pa1); got[obsA.ID] != 1 {
		t.Errorf("export --site a --patient %s lacks its observation: %v", pa1, got)
	}
	if got := exportIDs(t, dir, "--site", "b", "--patient", pa1); len(got) != 0 {
		t.Errorf("export --site b --patient (a patient of a) found %v", got)
	}
	if out := run(t, "audit", "verify", "--data", dir); !strings.HasPrefix(out, "OK") && out != "" {
		t.Logf("audit verify: %s", out)
	}
	waitFor(t, 5*time.Second, "the exports in a's audit trail", func() bool {
		_, body := srv.get(t, audTokA, "/fhir/AuditEvent?_count=20")
		return strings.Count(body, `resources exported"`) == 2 // a's two exports; b's is b's
	})

	// Hospital b leaves: two operators erase the whole site while the server runs. Its
	// clients and devices are refused within the staleness bound; a is untouched.
	runAs := func(user string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "USER="+user)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	req, errOut, err := runAs("alice", "site", "erase", "--data", dir, "--id", "b", "--reason", "end of contract")
	if err != nil {
		t.Fatalf("site erase: %v %s", err, errOut)
	}
	req = strings.TrimSpace(req)
	if _, errOut, err := runAs("alice", "site", "erase", "--data", dir, "--approve", req); err == nil || !strings.Contains(errOut, "two people") {
		t.Fatalf("the requester approves the site erasure: %v %s", err, errOut)
	}
	if _, errOut, err := runAs("bob", "site", "erase", "--data", dir, "--approve", req); err != nil || !strings.Contains(errOut, "devices (2) revoked and its clients (3) disabled") {
		t.Fatalf("site erase --approve: %v %s", err, errOut)
	}
	waitFor(t, 5*time.Second, "b's clients and devices to be refused", func() bool {
		st, _, _ := srv.tokenFor(t, ehrB, "")
		_, _, _, perr := post(t.Context(), srv.client(&certB), srv.url+"/fhir/Observation", observation(pb1, "dev-b", "80", time.Now()))
		return st == 401 && perr != nil
	})
	if st, _, body := srv.tokenFor(t, hie, "b"); st != 401 {
		t.Errorf("the health system's token for the erased site: %d %s, want 401", st, body)
	}
	if st, body := srv.get(t, tokA, "/fhir/Observation/"+obsA.ID); st != 200 {
		t.Errorf("a's observation after b's erasure: %d %s", st, body)
	}
	if out := run(t, "site", "list", "--data", dir); !strings.Contains(out, `"id":"b"`) || strings.Count(out, `"erased"`) != 1 {
		t.Errorf("site list after b's erasure: %s", out)
	}
	if _, errOut, err := runErr("device", "add", "--data", dir, "--id", "dev-b2", "--site", "b"); err == nil || !strings.Contains(errOut, "was erased") {
		t.Errorf("device add to the erased site: %v %s", err, errOut)
	}
	if got := exportIDs(t, dir, "--site", "b"); len(got) != 0 {
		t.Errorf("export of the erased site: %v", got)
	}
}

// pgDataKeys returns each stored data key (hex patient index → wrapped key) of site in the
// PostgreSQL schema.
func pgDataKeys(t *testing.T, dsn, schema, site string) map[string]string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), "SELECT patient_index, wrapped FROM "+schema+".data_keys WHERE site = $1", site) // #nosec G202 -- random hex test schema name
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var idx, wrapped []byte
		if err := rows.Scan(&idx, &wrapped); err != nil {
			t.Fatal(err)
		}
		out[hex.EncodeToString(idx)] = hex.EncodeToString(wrapped)
	}
	return out
}

// TestTwoSitesOnTwoPostgresNodes is TestTwoSitesOnOneServer's core on two nodes sharing one
// PostgreSQL database: what one site does through one node stays out of the other site's
// reach through the other node, and a site's key rotation leaves the other's keys untouched.
func TestTwoSitesOnTwoPostgresNodes(t *testing.T) {
	dsn, schema := testPostgres(t)
	t.Setenv("VITALGATE_E2E_DSN", dsn)
	dirA := t.TempDir() + "/node-a"
	run(t, "init", "--data", dirA, "--store", "env:VITALGATE_E2E_DSN", "--schema", schema, "--json")
	run(t, "site", "add", "--data", dirA, "--id", "a", "--name", "Hospital A")
	run(t, "site", "add", "--data", dirA, "--id", "b", "--name", "Hospital B")
	run(t, "model", "add", "--data", dirA, "--id", "gluco-1", "--binding", "identified")
	ehrA, ehrB := addSiteClient(t, dirA, "ehr-a", "ehr-system", "a"), addSiteClient(t, dirA, "ehr-b", "ehr-system", "b")
	adminA, adminB := addSiteClient(t, dirA, "admin-a", "admin", "a"), addSiteClient(t, dirA, "admin-b", "admin", "b")
	audB := addSiteClient(t, dirA, "aud-b", "auditor", "b")
	dirB := copyDir(t, dirA) // the same keys (the sites' own included), CA and store.json
	na, nb := startServer(t, dirA), startServer(t, dirB)

	// Patients of a through node A, of b through node B: the same MRN in both.
	const mrn = "urn:oid:1.2.3.4"
	_, pa1 := na.createPatientAs(t, na.token(t, adminA), mrn, "1001")
	_, pa2 := na.createPatientAs(t, na.token(t, adminA), mrn, "1002")
	st, pb1 := nb.createPatientAs(t, nb.token(t, adminB), mrn, "1001")
	if st != 201 || pa1 == "" || pa2 == "" {
		t.Fatalf("patients: %q %q %q (%d)", pa1, pa2, pb1, st)
	}
	secretA := strings.TrimSpace(run(t, "device", "add", "--data", dirA, "--id", "dev-a", "--site", "a", "--patient", pa1))
	secretB := strings.TrimSpace(run(t, "device", "add", "--data", dirA, "--id", "dev-b", "--site", "b", "--patient", pb1))
	gluco := strings.TrimSpace(run(t, "device", "add", "--data", dirA, "--id", "gl-a", "--site", "a", "--model", "gluco-1"))
	certA, certB, certG := na.enroll(t, "dev-a", secretA), nb.enroll(t, "dev-b", secretB), nb.enroll(t, "gl-a", gluco)
	now := time.Now().Add(-time.Minute)
	st, body, _, _ := post(t.Context(), na.client(&certA), na.url+"/fhir/Observation", observation(pa1, "dev-a", "72", now))
	var obsA struct{ ID string }
	if _ = json.Unmarshal(body, &obsA); st != 201 || obsA.ID == "" {
		t.Fatalf("dev-a through node A: %d %s", st, body)
	}
	// Node B: b's device cannot write for a's patient; the identified device of a writes for
	// a's two patients and not for b's.
	if st, body, _, _ := post(t.Context(), nb.client(&certB), nb.url+"/fhir/Observation", observation(pa1, "dev-b", "80", now)); st != 403 {
		t.Errorf("dev-b for a's patient through node B: %d %s", st, body)
	}
	for p, want := range map[string]int{pa1: 201, pa2: 201, pb1: 403} {
		if st, body, _, _ := post(t.Context(), nb.client(&certG), nb.url+"/fhir/Observation", observation(p, "gl-a", "90", now)); st != want {
			t.Errorf("identified device of a for %s through node B: %d %s, want %d", p, st, body, want)
		}
	}
	// b's client on node B reads nothing of a's, written through node A.
	tokB := nb.token(t, ehrB)
	for _, path := range []string{"/fhir/Observation/" + obsA.ID, "/fhir/Patient/" + pa1, "/fhir/Device/dev-a"} {
		if st, body := nb.get(t, tokB, path); st != 404 {
			t.Errorf("b reads %s through node B: %d %s, want 404", path, st, body)
		}
	}
	if st, body := nb.get(t, tokB, "/fhir/Observation?patient="+pa1); st != 200 || strings.Contains(body, obsA.ID) {
		t.Errorf("b searches a's patient through node B: %d %s", st, body)
	}
	// b's auditor, on node A, sees b's refusals and nothing of a's.
	audTokB := na.token(t, audB)
	_, allB := na.get(t, audTokB, "/fhir/AuditEvent?_count=1000")
	if !strings.Contains(allB, `"value":"dev-b"`) {
		t.Errorf("b's auditor does not see dev-b's refusal: %s", allB)
	}
	for _, theirs := range []string{obsA.ID, "dev-a", "gl-a", "ehr-a", "admin-a"} {
		if strings.Contains(allB, theirs) {
			t.Errorf("b's auditor sees %q of site a", theirs)
		}
	}

	// a's key rotation, run on node A's data dir, rewraps a's keys only; node B reads a's
	// data once it has a's new key file.
	beforeA, beforeB := pgDataKeys(t, dsn, schema, "a"), pgDataKeys(t, dsn, schema, "b")
	run(t, "keys", "rotate", "--data", dirA, "--site", "a")
	afterA, afterB := pgDataKeys(t, dsn, schema, "a"), pgDataKeys(t, dsn, schema, "b")
	if len(beforeA) == 0 || len(beforeB) == 0 {
		t.Fatalf("data keys: %d of a, %d of b", len(beforeA), len(beforeB))
	}
	for idx, w := range beforeA {
		if afterA[idx] == w {
			t.Errorf("a's data key %s was not rewrapped", idx)
		}
	}
	for idx, w := range beforeB {
		if afterB[idx] != w {
			t.Errorf("b's data key %s changed in a's rotation", idx)
		}
	}
	newKey := filepath.Join("keys", "sites", "a", "kek-2.key")
	data, err := os.ReadFile(filepath.Join(dirA, newKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, newKey), data, 0o600); err != nil {
		t.Fatal(err)
	}
	tokA := nb.token(t, ehrA)
	if st, body := nb.get(t, tokA, "/fhir/Observation/"+obsA.ID); st != 200 {
		t.Errorf("a's observation through node B after a's rotation: %d %s", st, body)
	}
	if st, body := nb.get(t, tokB, "/fhir/Patient/"+pb1); st != 200 {
		t.Errorf("b's patient through node B after a's rotation: %d %s", st, body)
	}
}
