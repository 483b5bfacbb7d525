package simulator_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/simulator"
)

// testCA is a certificate authority built with crypto/x509 for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func mustCA(tb testing.TB, name string) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

var serial atomic.Int64

func (ca *testCA) issue(tb testing.TB, tmpl *x509.Certificate, pub any) *x509.Certificate {
	tb.Helper()
	tmpl.SerialNumber = big.NewInt(serial.Add(1) + 1)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

func (ca *testCA) serverCert(tb testing.TB) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	cert := ca.issue(tb, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, key.Public())
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

// fakeServer is a test double of the Vitalgate server: a tiny EST and FHIR endpoint that
// checks everything the simulator sends and answers as the contract says.
type fakeServer struct {
	tb  testing.TB
	ca  *testCA
	srv *httptest.Server

	mu       sync.Mutex
	secrets  map[string]string // device id -> enrollment secret
	patients map[string]string // device id -> patient id
	// cacertsCA, when set, is what cacerts answers instead of the server's CA.
	cacertsCA *x509.Certificate
	// validity of issued device certificates (default one hour).
	validity time.Duration
	// fhirStatus, when non-zero, is the answer to every Observation instead of 201.
	fhirStatus  int
	retryAfter  string
	diagnostics string
	// rejectOddEntries makes batch answers refuse every entry with an odd index (422).
	rejectOddEntries bool
	// hang makes FHIR posts wait until the client goes away.
	hang bool

	accepted    atomic.Int64 // observations answered 201
	fhirPosts   atomic.Int64 // FHIR requests received
	enrolls     atomic.Int64
	reenrolls   atomic.Int64
	inFlight    chan struct{} // receives when a hanging request arrives
	reenrollOld chan *x509.Certificate
}

func newFakeServer(tb testing.TB) *fakeServer {
	tb.Helper()
	f := &fakeServer{
		tb:          tb,
		ca:          mustCA(tb, "Fake Vitalgate CA"),
		secrets:     map[string]string{},
		patients:    map[string]string{},
		validity:    time.Hour,
		inFlight:    make(chan struct{}, 100),
		reenrollOld: make(chan *x509.Certificate, 10),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/est/cacerts", f.cacerts)
	mux.HandleFunc("POST /.well-known/est/simpleenroll", f.simpleenroll)
	mux.HandleFunc("POST /.well-known/est/simplereenroll", f.simplereenroll)
	mux.HandleFunc("POST /fhir/Observation", f.observation)
	mux.HandleFunc("POST /fhir", f.bundle)
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.EnableHTTP2 = true
	f.srv.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{f.ca.serverCert(tb)},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    f.ca.pool,
	}
	f.srv.StartTLS()
	tb.Cleanup(f.srv.Close)
	return f
}

// addDevice registers a device with its secret and patient, as `vitalgate device add` does.
func (f *fakeServer) addDevice(id, patient, kind string) simulator.DeviceConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	secret := "secret-" + id
	f.secrets[id] = secret
	f.patients[id] = patient
	return simulator.DeviceConfig{ID: id, PatientID: patient, EnrollSecret: secret, Kind: kind}
}

func (f *fakeServer) set(fn func(f *fakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeServer) config(devices ...simulator.DeviceConfig) simulator.Config {
	return simulator.Config{
		ServerURL: f.srv.URL,
		CAPool:    f.ca.pool,
		Devices:   devices,
		Interval:  20 * time.Millisecond,
	}
}

func outcome(w http.ResponseWriter, status int, diagnostics string) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []any{map[string]any{"severity": "error", "code": "invalid", "diagnostics": diagnostics}},
	})
}

// fail records a protocol violation by the simulator and answers 400.
func (f *fakeServer) fail(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.tb.Errorf("fake server: simulator broke the contract: %s", msg)
	outcome(w, http.StatusBadRequest, msg)
}

func writeCertsOnly(w http.ResponseWriter, contentType string, certs ...*x509.Certificate) {
	der, err := pki.EncodeCertsOnly(certs...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Transfer-Encoding", "base64")
	enc := base64.StdEncoding.EncodeToString(der)
	for len(enc) > 64 { // with line breaks, as RFC 7030 servers may send
		fmt.Fprintf(w, "%s\r\n", enc[:64])
		enc = enc[64:]
	}
	fmt.Fprintf(w, "%s\r\n", enc)
}

func (f *fakeServer) cacerts(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	ca := f.cacertsCA
	f.mu.Unlock()
	if ca == nil {
		ca = f.ca.cert
	}
	writeCertsOnly(w, "application/pkcs7-mime", ca)
}

// readCSR checks the content type, base64 body and signature of a CSR.
func (f *fakeServer) readCSR(w http.ResponseWriter, r *http.Request) *x509.CertificateRequest {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/pkcs10" {
		f.fail(w, "CSR Content-Type %q", r.Header.Get("Content-Type"))
		return nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.fail(w, "reading CSR: %v", err)
		return nil
	}
	clean := strings.Map(func(c rune) rune {
		if strings.ContainsRune(" \t\r\n", c) {
			return -1
		}
		return c
	}, string(body))
	der, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		f.fail(w, "CSR body is not standard base64: %v", err)
		return nil
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		f.fail(w, "CSR does not parse: %v", err)
		return nil
	}
	if err := csr.CheckSignature(); err != nil {
		f.fail(w, "CSR signature: %v", err)
		return nil
	}
	if pub, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		f.fail(w, "CSR key is not ECDSA P-256")
		return nil
	}
	return csr
}

func (f *fakeServer) issueDevice(w http.ResponseWriter, csr *x509.CertificateRequest) {
	f.mu.Lock()
	validity := f.validity
	f.mu.Unlock()
	cert := f.ca.issue(f.tb, &x509.Certificate{
		Subject:     pkix.Name{CommonName: csr.Subject.CommonName},
		NotBefore:   time.Now().Add(-time.Minute),
		NotAfter:    time.Now().Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, csr.PublicKey)
	writeCertsOnly(w, "application/pkcs7-mime; smime-type=certs-only", cert, f.ca.cert)
}

func (f *fakeServer) simpleenroll(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	f.mu.Lock()
	want, known := f.secrets[id]
	f.mu.Unlock()
	if !ok || !known || secret != want {
		w.Header().Set("WWW-Authenticate", `Basic realm="est"`)
		outcome(w, http.StatusUnauthorized, "unknown device or wrong enrollment secret")
		return
	}
	csr := f.readCSR(w, r)
	if csr == nil {
		return
	}
	if csr.Subject.CommonName != id {
		f.fail(w, "CSR CN %q, Basic auth user %q", csr.Subject.CommonName, id)
		return
	}
	f.enrolls.Add(1)
	f.issueDevice(w, csr)
}

// peer returns the verified client certificate of the request, or nil.
func peer(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

func (f *fakeServer) simplereenroll(w http.ResponseWriter, r *http.Request) {
	cur := peer(r)
	if cur == nil {
		f.fail(w, "simplereenroll without a client certificate")
		return
	}
	csr := f.readCSR(w, r)
	if csr == nil {
		return
	}
	if csr.Subject.CommonName != cur.Subject.CommonName {
		f.fail(w, "reenroll CSR CN %q, certificate CN %q", csr.Subject.CommonName, cur.Subject.CommonName)
		return
	}
	f.reenrolls.Add(1)
	f.reenrollOld <- cur
	f.issueDevice(w, csr)
}

// checkObservation checks one Observation against the contract; it returns "" if it holds.
func (f *fakeServer) checkObservation(obs map[string]any, deviceID string) string {
	f.mu.Lock()
	patient := f.patients[deviceID]
	f.mu.Unlock()
	str := func(v any) string { s, _ := v.(string); return s }
	obj := func(v any) map[string]any { m, _ := v.(map[string]any); return m }
	arr := func(v any) []any { a, _ := v.([]any); return a }
	switch {
	case str(obs["resourceType"]) != "Observation":
		return "resourceType"
	case str(obs["status"]) != "final":
		return "status"
	case len(arr(obj(obs["meta"])["profile"])) == 0 || str(arr(obj(obs["meta"])["profile"])[0]) != "http://hl7.org/fhir/StructureDefinition/vitalsigns":
		return "meta.profile"
	case len(arr(obs["category"])) == 0 ||
		str(obj(arr(obj(arr(obs["category"])[0])["coding"])[0])["code"]) != "vital-signs":
		return "category"
	case len(arr(obj(obs["code"])["coding"])) == 0 ||
		str(obj(arr(obj(obs["code"])["coding"])[0])["system"]) != "http://loinc.org":
		return "code"
	case str(obj(obs["subject"])["reference"]) != "Patient/"+patient:
		return "subject " + str(obj(obs["subject"])["reference"])
	case str(obj(obs["device"])["reference"]) != "Device/"+deviceID:
		return "device " + str(obj(obs["device"])["reference"])
	}
	if _, err := time.Parse(time.RFC3339, str(obs["effectiveDateTime"])); err != nil {
		return "effectiveDateTime: " + err.Error()
	}
	quantities := []map[string]any{obj(obs["valueQuantity"])}
	if obs["valueQuantity"] == nil {
		quantities = nil
		for _, c := range arr(obs["component"]) {
			quantities = append(quantities, obj(obj(c)["valueQuantity"]))
		}
		if len(quantities) != 2 {
			return "neither valueQuantity nor two components"
		}
	}
	for _, q := range quantities {
		if _, ok := q["value"].(float64); !ok || str(q["system"]) != "http://unitsofmeasure.org" || str(q["code"]) == "" {
			return fmt.Sprintf("quantity %v", q)
		}
	}
	return ""
}

// fhirPeer checks the client certificate and content type of a FHIR post.
func (f *fakeServer) fhirPeer(w http.ResponseWriter, r *http.Request) (deviceID string, ok bool) {
	f.fhirPosts.Add(1)
	cert := peer(r)
	if cert == nil {
		f.fail(w, "FHIR post without a client certificate")
		return "", false
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/fhir+json" {
		f.fail(w, "FHIR Content-Type %q", ct)
		return "", false
	}
	f.mu.Lock()
	hang := f.hang
	f.mu.Unlock()
	if hang {
		f.inFlight <- struct{}{}
		<-r.Context().Done()
		return "", false
	}
	return cert.Subject.CommonName, true
}

func (f *fakeServer) observation(w http.ResponseWriter, r *http.Request) {
	id, ok := f.fhirPeer(w, r)
	if !ok {
		return
	}
	var obs map[string]any
	if err := json.NewDecoder(r.Body).Decode(&obs); err != nil {
		f.fail(w, "Observation JSON: %v", err)
		return
	}
	if bad := f.checkObservation(obs, id); bad != "" {
		f.fail(w, "Observation %s", bad)
		return
	}
	f.mu.Lock()
	status, retry, diag := f.fhirStatus, f.retryAfter, f.diagnostics
	f.mu.Unlock()
	if status != 0 {
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		outcome(w, status, diag)
		return
	}
	f.accepted.Add(1)
	obs["id"] = fmt.Sprint(f.accepted.Load())
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(obs)
}

func (f *fakeServer) bundle(w http.ResponseWriter, r *http.Request) {
	id, ok := f.fhirPeer(w, r)
	if !ok {
		return
	}
	var b struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			FullURL  string         `json:"fullUrl"`
			Resource map[string]any `json:"resource"`
			Request  struct {
				Method string `json:"method"`
				URL    string `json:"url"`
			} `json:"request"`
		} `json:"entry"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		f.fail(w, "Bundle JSON: %v", err)
		return
	}
	if b.ResourceType != "Bundle" || (b.Type != "batch" && b.Type != "transaction") || len(b.Entry) == 0 {
		f.fail(w, "Bundle resourceType %q type %q entries %d", b.ResourceType, b.Type, len(b.Entry))
		return
	}
	f.mu.Lock()
	status, diag, rejectOdd := f.fhirStatus, f.diagnostics, f.rejectOddEntries
	f.mu.Unlock()
	if status != 0 {
		outcome(w, status, diag)
		return
	}
	seen := map[string]bool{}
	var entries []any
	for i, e := range b.Entry {
		if !strings.HasPrefix(e.FullURL, "urn:uuid:") || len(e.FullURL) != len("urn:uuid:")+36 || seen[e.FullURL] {
			f.fail(w, "entry %d fullUrl %q", i, e.FullURL)
			return
		}
		seen[e.FullURL] = true
		if e.Request.Method != "POST" || e.Request.URL != "Observation" {
			f.fail(w, "entry %d request %+v", i, e.Request)
			return
		}
		if bad := f.checkObservation(e.Resource, id); bad != "" {
			f.fail(w, "entry %d Observation %s", i, bad)
			return
		}
		if rejectOdd && i%2 == 1 {
			entries = append(entries, map[string]any{"response": map[string]any{
				"status": "422 Unprocessable Entity",
				"outcome": map[string]any{"resourceType": "OperationOutcome", "issue": []any{
					map[string]any{"severity": "error", "code": "value", "diagnostics": diag},
				}},
			}})
			continue
		}
		f.accepted.Add(1)
		entries = append(entries, map[string]any{"response": map[string]any{
			"status":   "201 Created",
			"location": fmt.Sprintf("Observation/%d/_history/1", f.accepted.Load()),
		}})
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"resourceType": "Bundle", "type": b.Type + "-response", "entry": entries,
	})
}
