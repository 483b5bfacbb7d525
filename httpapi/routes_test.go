package httpapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/pki"
)

// TestDenyByDefault walks every registered route. Each must declare a permission and have a
// case here; without credentials it answers 401 (unless it is explicitly public), with the
// wrong role or scope 403, and with the right one 2xx. A new route without a case fails.
func TestDenyByDefault(t *testing.T) {
	e := MustEnv(t)
	ids := seed(t, e, 1)
	devCert := e.enroll("dev-2", e.addDevice("dev-2", "pat-1"))
	ehr := e.token("ehr", e.addClient("ehr", vitalgate.RoleEHRSystem), "")
	admin := e.token("admin", e.addClient("admin", vitalgate.RoleAdmin), "")
	auditor := e.token("auditor", e.addClient("auditor", vitalgate.RoleAuditor), "")
	ehrRO := e.token("ehr-ro", e.addClient("ehr-ro", vitalgate.RoleEHRSystem), "system/Patient.rs")
	key, _ := pki.GenerateDeviceKey(nil)
	csr, _ := pki.NewCSR("dev-2", key, nil)
	enrollSecret := e.addDevice("dev-3", "pat-1")
	obs := mustJSON(t, example(t, "Observation-heart-rate.json", "pat-1", "dev-2"))
	bundle := mustJSON(t, map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"resource": example(t, "Observation-heart-rate.json", "pat-1", "dev-2"), "request": map[string]any{"method": "POST", "url": "Observation"}}}})
	patient := func() []byte {
		return []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"` + strings.Repeat("x", len(t.Name())%7+1) + `-` + ids[0][:6] + `"}],"gender":"female"}`)
	}
	ehrSecret := e.addClient("ehr-basic", vitalgate.RoleEHRSystem)
	if _, err := e.audit.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	pr := e.bearer("POST", "/fhir/Patient", admin, []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"walk"}]}`), "application/fhir+json")
	var pat struct{ ID string }
	if json.Unmarshal(pr.body, &pat); pr.status != 201 || pat.ID == "" {
		t.Fatalf("create patient: %d %s", pr.status, pr.body)
	}

	type req struct {
		cert   *tls.Certificate
		token  string
		basic  [2]string
		ctype  string
		body   []byte
		path   string // overrides the pattern
		status int    // expected status
	}
	cases := map[string]struct{ right, wrong req }{
		"GET /healthz":                         {right: req{status: 200}},
		"GET /readyz":                          {right: req{status: 200}},
		"GET /fhir/metadata":                   {right: req{status: 200}},
		"GET /.well-known/smart-configuration": {right: req{status: 200}},
		"GET /.well-known/est/cacerts":         {right: req{status: 200}},
		"POST /.well-known/est/simpleenroll": {
			right: req{basic: [2]string{"dev-3", enrollSecret}, ctype: "application/pkcs10", status: 200, body: func() []byte {
				k, _ := pki.GenerateDeviceKey(nil)
				c, _ := pki.NewCSR("dev-3", k, nil)
				return pki.EncodeBase64(c)
			}()},
			wrong: req{basic: [2]string{"dev-2", "not-the-secret"}, ctype: "application/pkcs10", body: pki.EncodeBase64(csr), status: 401}},
		"POST /.well-known/est/simplereenroll": {
			right: req{cert: devCert, ctype: "application/pkcs10", body: pki.EncodeBase64(csr), status: 200},
			wrong: req{token: ehr, ctype: "application/pkcs10", body: pki.EncodeBase64(csr), status: 401}},
		"POST /fhir/Observation": {
			right: req{cert: devCert, ctype: "application/fhir+json", body: obs, status: 201},
			wrong: req{token: ehr, ctype: "application/fhir+json", body: obs, status: 401}},
		"POST /fhir": {
			right: req{cert: devCert, ctype: "application/fhir+json", body: bundle, status: 200},
			wrong: req{token: ehr, ctype: "application/fhir+json", body: bundle, status: 401}},
		"POST /oauth2/token": {
			right: req{basic: [2]string{"ehr-basic", ehrSecret}, ctype: "application/x-www-form-urlencoded", body: []byte("grant_type=client_credentials"), status: 200},
			wrong: req{basic: [2]string{"ehr-basic", ehrSecret}, ctype: "application/x-www-form-urlencoded", body: []byte("grant_type=client_credentials&scope=system/AuditEvent.rs"), status: 400}},
		"GET /fhir/Observation/{id}": {
			right: req{token: ehr, path: "/fhir/Observation/" + ids[0], status: 200},
			wrong: req{token: admin, path: "/fhir/Observation/" + ids[0], status: 403}},
		"GET /fhir/Observation": {
			right: req{token: ehr, path: "/fhir/Observation?patient=pat-1", status: 200},
			wrong: req{token: ehrRO, path: "/fhir/Observation?patient=pat-1", status: 403}},
		"POST /fhir/Patient": {
			right: req{token: admin, ctype: "application/fhir+json", body: patient(), status: 201},
			wrong: req{token: ehrRO, ctype: "application/fhir+json", body: patient(), status: 403}},
		"GET /fhir/Patient/{id}": {
			right: req{token: ehr, path: "/fhir/Patient/" + pat.ID, status: 200},
			wrong: req{token: auditor, path: "/fhir/Patient/" + pat.ID, status: 403}},
		"GET /fhir/Patient": {
			right: req{token: ehr, path: "/fhir/Patient?identifier=urn:test|none", status: 200},
			wrong: req{token: auditor, path: "/fhir/Patient?identifier=urn:test|none", status: 403}},
		"GET /fhir/Device/{id}": {
			right: req{token: ehr, path: "/fhir/Device/dev-2", status: 200},
			wrong: req{token: auditor, path: "/fhir/Device/dev-2", status: 403}},
		"GET /fhir/AuditEvent": {
			right: req{token: auditor, path: "/fhir/AuditEvent?action=C", status: 200},
			wrong: req{token: ehr, path: "/fhir/AuditEvent?action=C", status: 403}},
		"GET /audit/checkpoint": {
			right: req{token: auditor, status: 200},
			wrong: req{token: admin, status: 403}},
		"GET /audit/proof/inclusion": {
			right: req{token: auditor, path: "/audit/proof/inclusion?index=0&size=1", status: 200},
			wrong: req{token: ehr, path: "/audit/proof/inclusion?index=0&size=1", status: 403}},
		"GET /audit/proof/consistency": {
			right: req{token: auditor, path: "/audit/proof/consistency?from=1&to=2", status: 200},
			wrong: req{token: ehr, path: "/audit/proof/consistency?from=1&to=2", status: 403}},
		"PUT /admin/devices/{id}": {
			right: req{token: admin, path: "/admin/devices/dev-2", ctype: "application/json", body: []byte(`{"patient":"pat-1"}`), status: 200},
			wrong: req{token: ehr, path: "/admin/devices/dev-2", ctype: "application/json", body: []byte(`{"patient":"pat-1"}`), status: 403}},
	}
	send := func(t *testing.T, rt httpapi.Route, q req) int {
		t.Helper()
		path := rt.Pattern
		if q.path != "" {
			path = q.path
		}
		hr, _ := http.NewRequest(rt.Method, e.url+path, bytes.NewReader(q.body))
		if q.ctype != "" {
			hr.Header.Set("Content-Type", q.ctype)
		}
		if q.token != "" {
			hr.Header.Set("Authorization", "Bearer "+q.token)
		}
		if q.basic[0] != "" {
			hr.SetBasicAuth(q.basic[0], q.basic[1])
		}
		resp, err := e.client(q.cert).Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+json") && resp.StatusCode >= 400 {
			var oo outcome
			if json.Unmarshal(buf.Bytes(), &oo) != nil || oo.ResourceType != "OperationOutcome" {
				t.Errorf("error %d is not an OperationOutcome: %s", resp.StatusCode, buf.Bytes())
			}
		}
		return resp.StatusCode
	}
	for _, rt := range e.srv.Routes() {
		name := rt.Method + " " + rt.Pattern
		t.Run(name, func(t *testing.T) {
			if rt.Permission == "" {
				t.Fatal("route declares no permission")
			}
			c, ok := cases[name]
			if !ok {
				t.Fatal("route has no deny-by-default case: add one to TestDenyByDefault")
			}
			anon := send(t, rt, req{ctype: c.right.ctype, body: c.right.body, path: c.right.path})
			if rt.Auth == httpapi.AuthPublic {
				if rt.Permission != access.PermPublic || anon != 200 {
					t.Fatalf("public route: permission %q, anonymous status %d", rt.Permission, anon)
				}
				return
			}
			if anon != 401 {
				t.Fatalf("without credentials: %d, want 401", anon)
			}
			if got := send(t, rt, c.wrong); got != c.wrong.status {
				t.Fatalf("with the wrong credentials: %d, want %d", got, c.wrong.status)
			}
			if got := send(t, rt, c.right); got != c.right.status {
				t.Fatalf("with the right credentials: %d, want %d", got, c.right.status)
			}
		})
	}
}
