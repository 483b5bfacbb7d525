package e2e_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/mllp"
	"github.com/vitalgate/vitalgate/simulator"
)

// labACK is the outcome of one lab message: MSA-1, ERR-3 and ERR-2 (segment^seq^field).
type labACK struct{ code, cond, loc string }

// sendLab sends one message over MLLP/TLS with the device certificate and reads its ACK.
func sendLab(t *testing.T, s *server, addr string, cert tls.Certificate, msg []byte) labACK {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: s.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write(append(append([]byte{0x0b}, msg...), 0x1c, 0x0d)); err != nil {
		t.Fatal(err)
	}
	raw, err := bufio.NewReader(conn).ReadBytes(0x1c)
	if err != nil {
		t.Fatalf("reading the ACK: %v", err)
	}
	m, err := hl7v2.Parse([]byte(strings.TrimRight(strings.TrimLeft(string(raw), "\x0b"), "\x1c")), hl7v2.Limits{})
	if err != nil {
		t.Fatalf("ACK %q: %v", raw, err)
	}
	a := labACK{code: m.Segment("MSA").Field(1).Value()}
	if e := m.Segment("ERR"); e != nil {
		r := e.Field(2).Rep(1)
		a.cond = e.Field(3).Rep(1).Comp(1).Value()
		a.loc = r.Comp(1).Value() + "^" + r.Comp(2).Value() + "^" + r.Comp(3).Value()
	}
	return a
}

// labFile returns a lab/testdata sample, its times moved so that MSH-7 is a minute ago (the
// samples are dated; results older than the backdating bound are refused), mutated by the
// replacements old → new.
func labFile(t *testing.T, name string, replace ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "lab", "testdata", name)) // #nosec G304 -- a test sample
	if err != nil {
		t.Fatal(err)
	}
	s := string(simulator.ShiftHL7Times(raw, time.Now().Add(-time.Minute)))
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s has no %q", name, replace[i])
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	return []byte(s)
}

// searchSet returns the resources of a searchset Bundle answered with 200.
func (s *server) searchSet(t *testing.T, token, path string) []map[string]any {
	t.Helper()
	st, body := s.get(t, token, path)
	if st != 200 {
		t.Fatalf("GET %s: %d %s", path, st, body)
	}
	var b struct {
		ResourceType string
		Entry        []struct{ Resource map[string]any }
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil || b.ResourceType != "Bundle" {
		t.Fatalf("GET %s: not a Bundle: %v %s", path, err, body)
	}
	out := make([]map[string]any, len(b.Entry))
	for i, e := range b.Entry {
		out[i] = e.Resource
	}
	return out
}

// TestLabResultsOverMLLPTLS: point-of-care and laboratory devices send the real lab samples
// (lab/testdata: an LRI blood gas ORU^R01 v2.5.1, its correction and cancellation, a glucose
// meter ORU^R01 v2.6, an IHE LAW OUL^R22) over MLLP/TLS to `vitalgate serve --mllp-addr`;
// each is acknowledged AA, and an EHR reads them back through FHIR search as Observations of
// category laboratory (the corrected result as version 2), DiagnosticReports and Specimens.
// Mutated copies with a bad unit, an unknown analyte or a patient who is not of the site get
// AE or AR with an ERR segment naming the field, and store nothing.
func TestLabResultsOverMLLPTLS(t *testing.T) {
	dir := initDir(t)
	run(t, "model", "add", "--data", dir, "--id", "poc-analyzer", "--binding", "identified")
	admin := addSiteClient(t, dir, "lab-admin", "admin", "default")
	ehr := addSiteClient(t, dir, "lab-ehr", "ehr-system", "default")
	devices := []string{"bga-icu-01", "gm-ward5-0421", "analyzer-c3"}
	secrets := map[string]string{}
	for _, d := range devices {
		secrets[d] = strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", d, "--model", "poc-analyzer"))
	}
	mllpAddr := freeAddr(t)
	srv := startServerAt(t, dir, freeAddr(t), "--mllp-addr", mllpAddr)
	adm, tok := srv.token(t, admin), srv.token(t, ehr)

	// The patients the samples' PID-3 name, by their assigning authority.
	oid := hl7v2.IdentifierSystem(hl7v2.HD{Namespace: "General Hospital", UniversalID: "2.16.840.1.113883.19.5", UniversalIDType: "ISO"}, nil)
	patients := map[string]string{}
	for _, p := range []struct{ system, mrn string }{
		{oid, "MRN-40021"}, {mllp.AuthoritySystem("General Hospital"), "MRN-40022"}, {mllp.AuthoritySystem("General Hospital"), "MRN-40023"},
	} {
		st, id := srv.createPatientAs(t, adm, p.system, p.mrn)
		if st != 201 {
			t.Fatalf("patient %s: %d", p.mrn, st)
		}
		patients[p.mrn] = id
	}
	certs := map[string]tls.Certificate{}
	for _, d := range devices {
		certs[d] = srv.enroll(t, d, secrets[d])
	}

	// A lost ACK's resend is the same bytes: the sample is shifted once for both sends (two
	// shifts a second apart would be two different messages).
	bloodGas := labFile(t, "10_spec_poc_blood_gas_oru_r01.hl7")
	sends := []struct {
		name, device string
		msg          []byte
		want         labACK
	}{
		{"unknown analyte", "bga-icu-01", labFile(t, "10_spec_poc_blood_gas_oru_r01.hl7", "2744-1^pH", "99999-9^pH"), labACK{"AE", "103", "OBX^1^3"}},
		{"bad unit", "bga-icu-01", labFile(t, "10_spec_poc_blood_gas_oru_r01.hl7", "52|mm[Hg]^mmHg^UCUM", "52|mL^mL^UCUM"), labACK{"AE", "103", "OBX^2^6"}},
		{"patient not of the site", "bga-icu-01", labFile(t, "10_spec_poc_blood_gas_oru_r01.hl7", "MRN-40021", "MRN-99999"), labACK{"AR", "204", "PID^1^3"}},
		{"another sending device", "gm-ward5-0421", labFile(t, "10_spec_poc_blood_gas_oru_r01.hl7"), labACK{"AR", "204", "MSH^1^3"}},
		{"blood gas", "bga-icu-01", bloodGas, labACK{code: "AA"}},
		{"blood gas again (a lost ACK)", "bga-icu-01", bloodGas, labACK{code: "AA"}},
		{"correction", "bga-icu-01", labFile(t, "13_spec_correction_oru_r01.hl7"), labACK{code: "AA"}},
		{"cancellation", "bga-icu-01", labFile(t, "14_spec_cancellation_oru_r01.hl7"), labACK{code: "AA"}},
		{"glucose meter", "gm-ward5-0421", labFile(t, "11_spec_glucose_meter_oru_r01.hl7"), labACK{code: "AA"}},
		{"LAW OUL^R22", "analyzer-c3", labFile(t, "12_spec_law_oul_r22_spm.hl7"), labACK{code: "AA"}},
	}
	for _, s := range sends {
		got := sendLab(t, srv, mllpAddr, certs[s.device], s.msg)
		if got.code != s.want.code || got.cond != s.want.cond || (s.want.loc != "" && got.loc != s.want.loc) {
			t.Errorf("%s: ACK %+v, want %+v", s.name, got, s.want)
		}
	}

	// The blood gas patient: 14 laboratory Observations, one report, one specimen.
	p := url.QueryEscape(patients["MRN-40021"])
	obs := srv.searchSet(t, tok, "/fhir/Observation?category=laboratory&patient="+p+"&_count=100")
	if len(obs) != 14 {
		t.Fatalf("%d laboratory Observations, want 14", len(obs))
	}
	k := srv.searchSet(t, tok, "/fhir/Observation?category=laboratory&patient="+p+"&code="+url.QueryEscape("http://loinc.org|6298-4")+
		"&date=ge"+time.Now().Add(-24*time.Hour).UTC().Format("2006-01-02"))
	if len(k) != 1 || k[0]["status"] != "corrected" || !strings.Contains(jsonString(k[0]["valueQuantity"]), `"value":5.4`) ||
		jsonString(k[0]["meta"]) == "" || !strings.Contains(jsonString(k[0]["meta"]), `"versionId":"2"`) {
		t.Errorf("potassium after the correction: %v", k)
	}
	if c := srv.searchSet(t, tok, "/fhir/Observation?category=laboratory&patient="+p+"&code=32693-4"); len(c) != 1 || c[0]["status"] != "cancelled" {
		t.Errorf("lactate after the cancellation: %v", c)
	}
	reports := srv.searchSet(t, tok, "/fhir/DiagnosticReport?patient="+p)
	if len(reports) != 1 {
		t.Fatalf("%d DiagnosticReports, want 1", len(reports))
	}
	res, _ := reports[0]["result"].([]any)
	spec, _ := reports[0]["specimen"].([]any)
	if len(res) != 14 || len(spec) != 1 {
		t.Fatalf("report holds %d results and %d specimens", len(res), len(spec))
	}
	for _, ref := range []any{res[0], spec[0]} {
		path := "/fhir/" + ref.(map[string]any)["reference"].(string)
		if st, body := srv.get(t, tok, path); st != 200 || !strings.Contains(body, patients["MRN-40021"]) {
			t.Errorf("GET %s: %d %s", path, st, body)
		}
	}
	if st, body := srv.get(t, tok, "/fhir/DiagnosticReport/"+reports[0]["id"].(string)); st != 200 || !strings.Contains(body, `"24336-0"`) {
		t.Errorf("GET DiagnosticReport: %d %s", st, body)
	}
	// The other devices' patients.
	for _, c := range []struct {
		mrn              string
		results, reports int
	}{{"MRN-40022", 1, 1}, {"MRN-40023", 3, 3}} {
		q := url.QueryEscape(patients[c.mrn])
		if n := len(srv.searchSet(t, tok, "/fhir/Observation?category=laboratory&patient="+q)); n != c.results {
			t.Errorf("%s: %d laboratory Observations, want %d", c.mrn, n, c.results)
		}
		if n := len(srv.searchSet(t, tok, "/fhir/DiagnosticReport?patient="+q)); n != c.reports {
			t.Errorf("%s: %d DiagnosticReports, want %d", c.mrn, n, c.reports)
		}
	}
	if st, body := srv.get(t, tok, "/fhir/metadata"); st != 200 || !strings.Contains(body, `"DiagnosticReport"`) || !strings.Contains(body, `"Specimen"`) {
		t.Errorf("CapabilityStatement: %d lacks DiagnosticReport or Specimen", st)
	}
	srv.stop(t)
	run(t, "audit", "verify", "--data", dir)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
