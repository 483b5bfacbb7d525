package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
)

// addClient registers an API client with a secret and returns the secret.
func (e *env) addClient(id string, role vitalgate.Role, patients ...string) string {
	e.t.Helper()
	secret, _ := auth.NewSecret(nil)
	hash, _ := auth.HashSecret(secret, fastHash, nil)
	c := vitalgate.Client{ID: id, Role: role, SecretHash: hash, CreatedAt: e.clock.Now()}
	for _, p := range patients {
		c.PatientIndexes = append(c.PatientIndexes, e.vault.PatientIndex(p))
	}
	if err := e.store.CreateClient(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// tokenReq posts a token request with Basic credentials and returns status and JSON body.
func (e *env) tokenReq(id, secret string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	form.Set("grant_type", "client_credentials")
	req, _ := http.NewRequest("POST", e.url+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := e.client(nil).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *env) token(id, secret, scope string) string {
	e.t.Helper()
	status, out := e.tokenReq(id, secret, url.Values{"scope": {scope}})
	tok, _ := out["access_token"].(string)
	if status != 200 || tok == "" {
		e.t.Fatalf("token for %s: %d %v", id, status, out)
	}
	return tok
}

func (e *env) bearer(method, path, tok string, body []byte, ctype string) result {
	req, _ := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := e.client(nil).Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}
}

// seed enrolls a device for patient pat-1 and stores n heart rates one minute apart.
func seed(t *testing.T, e *env, n int) []string {
	t.Helper()
	// The device was assigned before the readings were measured.
	e.clock.Advance(-time.Duration(n+1) * time.Minute)
	secret := e.addDevice("dev-1", "pat-1")
	e.clock.Advance(time.Duration(n+1) * time.Minute)
	cert := e.enroll("dev-1", secret)
	c := e.client(cert)
	var ids []string
	for i := 0; i < n; i++ {
		o := example(t, "Observation-heart-rate.json", "pat-1", "dev-1")
		o["effectiveDateTime"] = e.clock.Now().Add(-time.Duration(n-i) * time.Minute).Format(time.RFC3339)
		r := e.do(c, "POST", "/fhir/Observation", "application/fhir+json", mustJSON(t, o))
		if r.status != 201 {
			t.Fatalf("seed: %d %s", r.status, r.body)
		}
		var got struct{ ID string }
		_ = json.Unmarshal(r.body, &got)
		ids = append(ids, got.ID)
	}
	return ids
}

func TestTokenEndpoint(t *testing.T) {
	e := MustEnv(t)
	ehr := e.addClient("ehr", vitalgate.RoleEHRSystem)
	tests := []struct {
		name   string
		id     string
		secret string
		form   url.Values
		status int
		errStr string
	}{
		{"all role scopes", "ehr", ehr, url.Values{}, 200, ""},
		{"narrower scope", "ehr", ehr, url.Values{"scope": {"system/Observation.rs"}}, 200, ""},
		{"v1 scope", "ehr", ehr, url.Values{"scope": {"system/Observation.read"}}, 200, ""},
		{"beyond role", "ehr", ehr, url.Values{"scope": {"system/Observation.cruds"}}, 400, "invalid_scope"},
		{"other resource", "ehr", ehr, url.Values{"scope": {"system/AuditEvent.rs"}}, 400, "invalid_scope"},
		{"user context", "ehr", ehr, url.Values{"scope": {"user/Observation.rs"}}, 400, "invalid_scope"},
		{"wrong secret", "ehr", ehr + "x", url.Values{}, 401, "invalid_client"},
		{"unknown client", "nobody", ehr, url.Values{}, 401, "invalid_client"},
		{"no credentials", "", "", url.Values{}, 401, "invalid_client"},
		{"emergency for a system client", "ehr", ehr, url.Values{"emergency": {"true"}, "emergency_reason": {"patient collapsed in ward 3"}}, 400, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.tokenReq(tt.id, tt.secret, tt.form)
			if status != tt.status || (tt.errStr != "" && out["error"] != tt.errStr) {
				t.Fatalf("status %d %v, want %d %s", status, out, tt.status, tt.errStr)
			}
			if status == 200 {
				if out["token_type"] != "Bearer" || out["expires_in"].(float64) > 300 {
					t.Fatalf("bad token answer %v", out)
				}
			}
		})
	}
	t.Run("grant type", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.url+"/oauth2/token", strings.NewReader("grant_type=password&username=a&password=b"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("ehr", ehr)
		resp, err := e.client(nil).Do(req)
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
	})
	t.Run("failures are slowed", func(t *testing.T) {
		e.addClient("victim", vitalgate.RoleEHRSystem)
		for i := 0; i < 5; i++ {
			e.tokenReq("victim", "guess", url.Values{})
		}
		if status, out := e.tokenReq("victim", "guess", url.Values{}); status != 429 {
			t.Fatalf("after 5 failures: %d %v, want 429", status, out)
		}
	})
}

// forge signs claims with key and alg, to test that the server refuses what it did not issue.
func forge(t *testing.T, alg jose.SignatureAlgorithm, key any, claims any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBadTokensAreRefused(t *testing.T) {
	e := MustEnv(t)
	seed(t, e, 1)
	good := e.token("ehr", e.addClient("ehr", vitalgate.RoleEHRSystem), "")
	now := e.clock.Now()
	claims := func(mut func(m map[string]any)) map[string]any {
		m := map[string]any{"iss": strings.TrimSuffix(e.url, "/"), "sub": "ehr", "aud": e.url + "/fhir",
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "scope": "system/Observation.rs", "role": "ehr-system"}
		if mut != nil {
			mut(m)
		}
		return m
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	parts := strings.Split(good, ".")
	pubDER, _ := x509.MarshalPKIXPublicKey(&e.key.PublicKey)
	tests := []struct {
		name  string
		token string
	}{
		{"garbage", "not-a-token"},
		{"none algorithm", parts[0][:0] + "eyJhbGciOiJub25lIn0." + parts[1] + "."},
		{"HS256 with the public key as secret", forge(t, jose.HS256, pubDER, claims(nil))},
		{"signed by another key", forge(t, jose.ES256, other, claims(nil))},
		{"tampered payload", parts[0] + "." + strings.Replace(parts[1], parts[1][:4], "eyJz", 1) + "." + parts[2]},
		{"oversized", strings.Repeat("a", 20000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.bearer("GET", "/fhir/Observation?patient=pat-1", tt.token, nil, "")
			if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		e.clock.Advance(6 * time.Minute)
		defer e.clock.Advance(-6 * time.Minute)
		if r := e.bearer("GET", "/fhir/Observation?patient=pat-1", good, nil, ""); r.status != 401 {
			t.Fatalf("expired token: %d", r.status)
		}
	})
	t.Run("not yet valid", func(t *testing.T) {
		e.clock.Advance(-30 * time.Second)
		defer e.clock.Advance(30 * time.Second)
		if r := e.bearer("GET", "/fhir/Observation?patient=pat-1", good, nil, ""); r.status != 401 {
			t.Fatalf("future token: %d", r.status)
		}
	})
	if r := e.bearer("GET", "/fhir/Observation?patient=pat-1", good, nil, ""); r.status != 200 {
		t.Fatalf("the good token: %d %s", r.status, r.body)
	}
}

func TestPrivateKeyJWT(t *testing.T) {
	e := MustEnv(t)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: rsaKey.Public(), KeyID: "rsa-1", Algorithm: "RS384", Use: "sig"},
		{Key: ecKey.Public(), KeyID: "ec-1", Algorithm: "ES384", Use: "sig"},
	}}
	jwks, _ := json.Marshal(set)
	if err := e.store.CreateClient(context.Background(), vitalgate.Client{ID: "backend", Role: vitalgate.RoleEHRSystem, JWKS: jwks}); err != nil {
		t.Fatal(err)
	}
	assertion := func(alg jose.SignatureAlgorithm, key any, kid, jti string, exp time.Duration) string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now()
		s, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "backend", Subject: "backend", Audience: jwt.Audience{e.url + "/oauth2/token"},
			ID: jti, Expiry: jwt.NewNumericDate(now.Add(exp)), IssuedAt: jwt.NewNumericDate(now)}).Serialize()
		return s
	}
	post := func(a string) (int, map[string]any) {
		return e.tokenReq("", "", url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {a}, "scope": {"system/Observation.rs"}})
	}
	rs := assertion(jose.RS384, rsaKey, "rsa-1", "jti-1", 4*time.Minute)
	tests := []struct {
		name      string
		assertion string
		status    int
	}{
		{"RS384", rs, 200},
		{"replayed jti", rs, 401},
		{"ES384", assertion(jose.ES384, ecKey, "ec-1", "jti-2", time.Minute), 200},
		{"exp too far", assertion(jose.ES384, ecKey, "ec-1", "jti-3", 10*time.Minute), 401},
		{"RS256 not allowed", assertion(jose.RS256, rsaKey, "rsa-1", "jti-4", time.Minute), 401},
		{"unknown key", assertion(jose.ES384, func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader); return k }(), "ec-1", "jti-5", time.Minute), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, out := post(tt.assertion); status != tt.status {
				t.Fatalf("status %d %v, want %d", status, out, tt.status)
			}
		})
	}
}

func TestReadAndSearch(t *testing.T) {
	e := MustEnv(t)
	ids := seed(t, e, 7)
	tok := e.token("ehr", e.addClient("ehr", vitalgate.RoleEHRSystem), "")

	r := e.bearer("GET", "/fhir/Observation/"+ids[0], tok, nil, "")
	if r.status != 200 || !bytes.Contains(r.body, []byte(ids[0])) || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("read: %d %s", r.status, r.body)
	}
	if r := e.bearer("GET", "/fhir/Observation/nonexistent", tok, nil, ""); r.status != 404 {
		t.Fatalf("read missing: %d", r.status)
	}

	// Page through newest first, three at a time, following next links.
	var got []string
	next := "/fhir/Observation?patient=pat-1&code=http://loinc.org|8867-4&_count=3"
	for pages := 0; next != "" && pages < 10; pages++ {
		r := e.bearer("GET", next, tok, nil, "")
		if r.status != 200 {
			t.Fatalf("search: %d %s", r.status, r.body)
		}
		var b struct {
			Type  string
			Link  []struct{ Relation, URL string }
			Entry []struct{ Resource struct{ ID string } }
		}
		_ = json.Unmarshal(r.body, &b)
		if b.Type != "searchset" {
			t.Fatalf("not a searchset: %s", r.body)
		}
		for _, en := range b.Entry {
			got = append(got, en.Resource.ID)
		}
		next = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				next = strings.TrimPrefix(l.URL, e.url)
			}
		}
	}
	if len(got) != len(ids) {
		t.Fatalf("paged %d results, want %d", len(got), len(ids))
	}
	for i := range ids {
		if got[i] != ids[len(ids)-1-i] {
			t.Fatalf("order: got %v, want newest first of %v", got, ids)
		}
	}

	tests := []struct {
		name  string
		query string
		want  int
	}{
		{"date ge", "patient=pat-1&date=ge" + url.QueryEscape(e.clock.Now().Add(-3*time.Minute-30*time.Second).Format(time.RFC3339)), 3},
		{"date range", "patient=pat-1&date=ge" + url.QueryEscape(e.clock.Now().Add(-5*time.Minute-30*time.Second).Format(time.RFC3339)) +
			"&date=lt" + url.QueryEscape(e.clock.Now().Add(-2*time.Minute-30*time.Second).Format(time.RFC3339)), 3},
		{"bare code", "patient=pat-1&code=8867-4", 7},
		{"other code", "patient=pat-1&code=http://loinc.org|2708-6", 0},
		{"other patient", "patient=pat-2", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.bearer("GET", "/fhir/Observation?"+tt.query, tok, nil, "")
			var b struct{ Entry []json.RawMessage }
			_ = json.Unmarshal(r.body, &b)
			if r.status != 200 || len(b.Entry) != tt.want {
				t.Fatalf("status %d, %d entries, want %d: %s", r.status, len(b.Entry), tt.want, r.body)
			}
		})
	}
	bad := []struct{ name, query string }{
		{"no patient", "code=8867-4"},
		{"unknown parameter", "patient=pat-1&color=red"},
		{"bad date", "patient=pat-1&date=yesterday"},
		{"bad prefix", "patient=pat-1&date=xx2026-01-01"},
		{"huge value", "patient=" + strings.Repeat("a", 1000)},
		{"forged cursor", "patient=pat-1&_cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"sql in parameter", "patient=pat-1'%20OR%20'1'='1"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := e.bearer("GET", "/fhir/Observation?"+tt.query, tok, nil, "")
			var oo outcome
			if r.status != 400 || json.Unmarshal(r.body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
		})
	}
}

func TestPatientsDevicesAndCareTeams(t *testing.T) {
	e := MustEnv(t)
	admin := e.token("admin", e.addClient("admin", vitalgate.RoleAdmin), "")
	patient := []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.36.146.595.217.0.1","value":"MRN-12345"}],` +
		`"name":[{"family":"Chalmers","given":["Peter"]}],"gender":"male","birthDate":"1974-12-25"}`)
	r := e.bearer("POST", "/fhir/Patient", admin, patient, "application/fhir+json")
	if r.status != 201 {
		t.Fatalf("create patient: %d %s", r.status, r.body)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(r.body, &created)
	if r := e.bearer("POST", "/fhir/Patient", admin, patient, "application/fhir+json"); r.status != 409 {
		t.Fatalf("duplicate identifier: %d", r.status)
	}
	pid := created.ID

	// A device is assigned to the new patient; its next observation must name that patient.
	cert := e.enroll("dev-9", e.addDevice("dev-9", "old-patient"))
	if r := e.bearer("PUT", "/admin/devices/dev-9", admin, []byte(`{"patient":"`+pid+`"}`), "application/json"); r.status != 200 {
		t.Fatalf("assign: %d %s", r.status, r.body)
	}
	obs := example(t, "Observation-heart-rate.json", pid, "dev-9")
	if r := e.do(e.client(cert), "POST", "/fhir/Observation", "application/fhir+json", mustJSON(t, obs)); r.status != 201 {
		t.Fatalf("observation for the new patient: %d %s", r.status, r.body)
	}
	old := example(t, "Observation-heart-rate.json", "old-patient", "dev-9")
	if r := e.do(e.client(cert), "POST", "/fhir/Observation", "application/fhir+json", mustJSON(t, old)); r.status != 403 {
		t.Fatalf("observation for the old patient: %d", r.status)
	}

	ehr := e.token("ehr", e.addClient("ehr", vitalgate.RoleEHRSystem), "")
	r = e.bearer("GET", "/fhir/Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|MRN-12345", ehr, nil, "")
	if r.status != 200 || !bytes.Contains(r.body, []byte(pid)) {
		t.Fatalf("patient search: %d %s", r.status, r.body)
	}
	r = e.bearer("GET", "/fhir/Device/dev-9", ehr, nil, "")
	if r.status != 200 || !bytes.Contains(r.body, []byte("Patient/"+pid)) {
		t.Fatalf("device read: %d %s", r.status, r.body)
	}

	// Clinicians see their care team only, except through emergency access.
	inTeam := e.token("dr-in", e.addClient("dr-in", vitalgate.RoleClinician, pid), "")
	outSecret := e.addClient("dr-out", vitalgate.RoleClinician, "someone-else")
	outTeam := e.token("dr-out", outSecret, "")
	if r := e.bearer("GET", "/fhir/Observation?patient="+pid, inTeam, nil, ""); r.status != 200 {
		t.Fatalf("care team member: %d %s", r.status, r.body)
	}
	if r := e.bearer("GET", "/fhir/Observation?patient="+pid, outTeam, nil, ""); r.status != 403 {
		t.Fatalf("outside the care team: %d %s", r.status, r.body)
	}
	if r := e.bearer("GET", "/fhir/Patient/"+pid, outTeam, nil, ""); r.status != 403 {
		t.Fatalf("patient read outside the care team: %d", r.status)
	}
	status, out := e.tokenReq("dr-out", outSecret, url.Values{"emergency": {"true"}})
	if status != 400 {
		t.Fatalf("emergency without a reason: %d %v", status, out)
	}
	status, out = e.tokenReq("dr-out", outSecret, url.Values{"emergency": {"true"}, "emergency_reason": {"cardiac arrest, bed 12, attending unavailable"}})
	if status != 200 {
		t.Fatalf("emergency token: %d %v", status, out)
	}
	if r := e.bearer("GET", "/fhir/Observation?patient="+pid, out["access_token"].(string), nil, ""); r.status != 200 {
		t.Fatalf("emergency access: %d %s", r.status, r.body)
	}
	if exp := out["expires_in"].(float64); exp > 120 {
		t.Fatalf("emergency token lives %v s, want at most the configured 2 minutes", exp)
	}
	// An EHR may not create with a read-only token.
	ro := e.token("ehr2", mustSecret(t, e, "ehr2"), "system/Patient.rs")
	if r := e.bearer("POST", "/fhir/Patient", ro, patient, "application/fhir+json"); r.status != 403 {
		t.Fatalf("create with a read-only scope: %d", r.status)
	}
}

func mustSecret(t *testing.T, e *env, id string) string {
	t.Helper()
	return e.addClient(id, vitalgate.RoleEHRSystem)
}
