package httpapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/bulk"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/subscription"
)

// TestDenyByDefault walks every registered route. Each must declare a permission and have a
// case here; without credentials it answers 401 (unless it is explicitly public), with the
// wrong role or scope 403, and with the right one 2xx. Every route that is not public also
// has a cross-site case: the same request by a principal of another site (site b), which
// never reaches the first site's records (404 as for a record that does not exist, 403 for a
// device writing for another site's patient, or an answer that holds nothing of the first
// site). A new route without a case fails.
func TestDenyByDefault(t *testing.T) {
	e := MustEnv(t)
	if err := e.store.CreateSite(context.Background(), vitalgate.Site{ID: "b", Name: "Site B"}); err != nil {
		t.Fatal(err)
	}
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
	reportID, specimenID := seedLab(t, e, "pat-1")
	ehrSecret := e.addClient("ehr-basic", vitalgate.RoleEHRSystem)
	if _, err := e.audit.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	pr := e.bearer("POST", "/fhir/Patient", admin, []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"walk"}]}`), "application/fhir+json")
	var pat struct{ ID string }
	if json.Unmarshal(pr.body, &pat); pr.status != 201 || pat.ID == "" {
		t.Fatalf("create patient: %d %s", pr.status, pr.body)
	}
	// An erasure request by a second admin, for the first to approve, and a hold to release.
	admin2 := e.token("admin-2", e.addClient("admin-2", vitalgate.RoleAdmin), "")
	er := e.bearer("POST", "/admin/patients/pat-gone/erasure", admin2, []byte(`{"reason":"the patient's request"}`), "application/json")
	var erq struct{ ID string }
	if json.Unmarshal(er.body, &erq); er.status != 201 || erq.ID == "" {
		t.Fatalf("request erasure: %d %s", er.status, er.body)
	}
	if h := e.bearer("PUT", "/admin/patients/pat-held-2/legal-hold", admin2, []byte(`{"reason":"litigation"}`), "application/json"); h.status != 201 {
		t.Fatalf("place hold: %d %s", h.status, h.body)
	}
	// Site b: its own EHR, admin, auditor and device (assigned to its own patient pat-1).
	ehrB := e.token("ehr-b", e.addSiteClient("ehr-b", vitalgate.RoleEHRSystem, "b"), "")
	adminB := e.token("admin-b", e.addSiteClient("admin-b", vitalgate.RoleAdmin, "b"), "")
	auditorB := e.token("auditor-b", e.addSiteClient("auditor-b", vitalgate.RoleAuditor, "b"), "")
	ehrBSecret := e.addSiteClient("ehr-b-basic", vitalgate.RoleEHRSystem, "b")
	devBCert := e.enroll("dev-b", e.addSiteDevice("dev-b", "pat-1", "b"))
	e.addSiteDevice("dev-b3", "pat-1", "b") // its own secret is never sent: the case sends the first site's
	// An observation and a transaction naming the first site's Patient, sent by site b's device.
	obsA := mustJSON(t, example(t, "Observation-heart-rate.json", pat.ID, "dev-b"))
	bundleA := mustJSON(t, map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		map[string]any{"resource": example(t, "Observation-heart-rate.json", pat.ID, "dev-b"), "request": map[string]any{"method": "POST", "url": "Observation"}}}})

	// Updates: a release of model pump-a, a pump-a device of the first site, and site b's
	// device (of no model) that must not see it.
	updatePath := e.publishUpdate("pump-a", "1.0", bytes.NewReader([]byte("firmware")))
	pumpCert := e.enroll("pump-walk", e.addModelDevice("pump-walk", "pump-a", vitalgate.DefaultSite))

	type req struct {
		cert   *tls.Certificate
		token  string
		basic  [2]string
		ctype  string
		body   []byte
		path   string // overrides the pattern
		status int    // expected status
		lacks  string // the answer must not contain this (another site's id)
		prefer bool   // send Prefer: respond-async (bulk export kick-off)
		// pathFn, when set, gives the path when the request is sent (for a record that an
		// earlier route's act, such as an erasure, would have destroyed).
		pathFn func() string
	}
	// A security alert of the first site (a revoked certificate retried), for the
	// DetectedIssue routes.
	var alertID string
	for i := range 5 {
		as, err := e.detect.Observe(context.Background(), detect.Signal{Kind: detect.KindCertRefused, At: e.clock.Now().Add(time.Duration(i) * time.Second),
			Device: "dev-2", Site: vitalgate.DefaultSite, Reason: "client certificate has been revoked"})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			alertID = a.ID
		}
	}
	// Bulk export: a done job of the first site's EHR (status and file routes) and a queued
	// one (cancel).
	ehrP := vitalgate.Principal{Kind: "client", ID: "ehr", Role: vitalgate.RoleEHRSystem, Site: vitalgate.DefaultSite, Scopes: []string{"system/Patient.rs"}}
	doneJob, err := e.bulk.KickOff(context.Background(), ehrP, bulk.Request{Types: []string{"Patient"}})
	if err != nil {
		t.Fatal(err)
	}
	if ran, err := e.bulk.RunOne(context.Background()); !ran || err != nil {
		t.Fatalf("bulk RunOne = %v, %v", ran, err)
	}
	queuedJob, err := e.bulk.KickOff(context.Background(), ehrP, bulk.Request{Types: []string{"Patient"}})
	if err != nil {
		t.Fatal(err)
	}
	// Subscriptions: one of the first site's EHR.
	sub := func() string {
		obsP := ehrP
		obsP.Scopes = []string{"system/Observation.rs"}
		sb, err := e.subs.Create(context.Background(), obsP, subscription.Request{Topic: subscription.TopicObservation, Endpoint: "https://notify.example/hook"})
		if err != nil {
			t.Fatal(err)
		}
		return sb.ID
	}
	subID, subDel := sub(), sub()
	subBody := []byte(`{"resourceType":"Subscription","status":"requested","criteria":"` + subscription.TopicObservation + `","channel":{"type":"rest-hook","endpoint":"https://notify.example/hook","payload":"application/fhir+json"}}`)
	exportParams := []byte(`{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient"}]}`)
	cases := map[string]struct{ right, wrong, other req }{
		"GET /fhir/SubscriptionTopic": {
			right: req{token: ehr, status: 200},
			wrong: req{token: admin, status: 403},
			other: req{token: ehrB, status: 200}}, // the topics are the same for every site
		"POST /fhir/Subscription": {
			right: req{token: ehr, ctype: "application/fhir+json", body: subBody, status: 201},
			wrong: req{token: auditor, ctype: "application/fhir+json", body: subBody, status: 403},
			other: req{token: ehrB, ctype: "application/fhir+json", body: subBody, status: 201}}, // its own, of site b
		"GET /fhir/Subscription/{id}": {
			right: req{token: ehr, path: "/fhir/Subscription/" + subID, status: 200},
			wrong: req{token: admin, path: "/fhir/Subscription/" + subID, status: 403},
			other: req{token: ehrB, path: "/fhir/Subscription/" + subID, status: 404}},
		"DELETE /fhir/Subscription/{id}": {
			right: req{token: ehr, path: "/fhir/Subscription/" + subDel, status: 204},
			wrong: req{token: admin, path: "/fhir/Subscription/" + subDel, status: 403},
			other: req{token: ehrB, path: "/fhir/Subscription/" + subID, status: 404}},
		"GET /fhir/Subscription/{id}/$status": {
			right: req{token: ehr, path: "/fhir/Subscription/" + subID + "/$status", status: 200},
			wrong: req{token: auditor, path: "/fhir/Subscription/" + subID + "/$status", status: 403},
			other: req{token: ehrB, path: "/fhir/Subscription/" + subID + "/$status", status: 404}},
		"GET /fhir/Subscription/{id}/$events": {
			right: req{token: ehr, path: "/fhir/Subscription/" + subID + "/$events", status: 200},
			wrong: req{token: auditor, path: "/fhir/Subscription/" + subID + "/$events", status: 403},
			other: req{token: ehrB, path: "/fhir/Subscription/" + subID + "/$events", status: 404}},
		"GET /fhir/Patient/$export": {
			right: req{token: ehr, prefer: true, path: "/fhir/Patient/$export?_type=Patient", status: 202},
			wrong: req{token: auditor, prefer: true, status: 403},
			// Site b's EHR exports site b's patients (its own job).
			other: req{token: ehrB, prefer: true, status: 202}},
		"POST /fhir/Patient/$export": {
			right: req{token: ehr, prefer: true, ctype: "application/fhir+json", body: exportParams, status: 202},
			wrong: req{token: admin, prefer: true, ctype: "application/fhir+json", body: exportParams, status: 403},
			other: req{token: ehrB, prefer: true, ctype: "application/fhir+json", body: exportParams, status: 202}},
		"GET /fhir/Group/{id}/$export": {
			right: req{token: ehr, prefer: true, path: "/fhir/Group/site-default/$export", status: 202},
			wrong: req{token: auditor, prefer: true, path: "/fhir/Group/site-default/$export", status: 403},
			other: req{token: ehrB, prefer: true, path: "/fhir/Group/site-default/$export", status: 404}},
		"POST /fhir/Group/{id}/$export": {
			right: req{token: ehr, prefer: true, path: "/fhir/Group/site-default/$export", ctype: "application/fhir+json", body: exportParams, status: 202},
			wrong: req{token: admin, prefer: true, path: "/fhir/Group/site-default/$export", ctype: "application/fhir+json", body: exportParams, status: 403},
			other: req{token: ehrB, prefer: true, path: "/fhir/Group/site-default/$export", ctype: "application/fhir+json", body: exportParams, status: 404}},
		"GET /fhir/Group": {
			right: req{token: ehr, status: 200},
			wrong: req{token: admin, status: 403},
			other: req{token: ehrB, status: 200, lacks: "site-default"}},
		"GET /fhir/bulk/{id}": {
			right: req{token: ehr, path: "/fhir/bulk/" + doneJob.ID, status: 200},
			wrong: req{token: admin, path: "/fhir/bulk/" + doneJob.ID, status: 403},
			other: req{token: ehrB, path: "/fhir/bulk/" + doneJob.ID, status: 404}},
		"DELETE /fhir/bulk/{id}": {
			right: req{token: ehr, path: "/fhir/bulk/" + queuedJob.ID, status: 202},
			wrong: req{token: admin, path: "/fhir/bulk/" + queuedJob.ID, status: 403},
			other: req{token: ehrB, path: "/fhir/bulk/" + doneJob.ID, status: 404}},
		"GET /fhir/bulk/{id}/file/{n}": {
			// A fresh job: the erasure approved above destroyed the files of earlier ones.
			right: req{token: ehr, status: 200, pathFn: func() string {
				j, err := e.bulk.KickOff(context.Background(), ehrP, bulk.Request{Types: []string{"Patient"}})
				if err != nil {
					t.Fatal(err)
				}
				for { // the kick-offs of the routes above are queued before it
					ran, err := e.bulk.RunOne(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					if !ran {
						break
					}
				}
				return "/fhir/bulk/" + j.ID + "/file/0"
			}},
			wrong: req{token: auditor, path: "/fhir/bulk/" + doneJob.ID + "/file/0", status: 403},
			other: req{token: ehrB, path: "/fhir/bulk/" + doneJob.ID + "/file/0", status: 404}},
		"GET /fhir/DetectedIssue/{id}": {
			right: req{token: auditor, path: "/fhir/DetectedIssue/" + alertID, status: 200},
			wrong: req{token: ehr, path: "/fhir/DetectedIssue/" + alertID, status: 403},
			other: req{token: auditorB, path: "/fhir/DetectedIssue/" + alertID, status: 404}},
		"GET /fhir/DetectedIssue": {
			right: req{token: auditor, path: "/fhir/DetectedIssue?status=open", status: 200},
			wrong: req{token: admin, path: "/fhir/DetectedIssue?status=open", status: 403},
			other: req{token: auditorB, path: "/fhir/DetectedIssue?status=open", status: 200, lacks: alertID}},
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
			wrong: req{basic: [2]string{"dev-2", "not-the-secret"}, ctype: "application/pkcs10", body: pki.EncodeBase64(csr), status: 401},
			// A device of site b with the first site's device's secret.
			other: req{basic: [2]string{"dev-b3", enrollSecret}, ctype: "application/pkcs10", body: pki.EncodeBase64(csr), status: 401}},
		"POST /.well-known/est/simplereenroll": {
			right: req{cert: devCert, ctype: "application/pkcs10", body: pki.EncodeBase64(csr), status: 200},
			wrong: req{token: ehr, ctype: "application/pkcs10", body: pki.EncodeBase64(csr), status: 401},
			// Site b's device asks for a certificate naming dev-2, the first site's: refused.
			other: req{cert: devBCert, ctype: "application/pkcs10", body: pki.EncodeBase64(csr), status: 422}},
		"POST /fhir/Observation": {
			right: req{cert: devCert, ctype: "application/fhir+json", body: obs, status: 201},
			wrong: req{token: ehr, ctype: "application/fhir+json", body: obs, status: 401},
			other: req{cert: devBCert, ctype: "application/fhir+json", body: obsA, status: 403}},
		"POST /fhir": {
			right: req{cert: devCert, ctype: "application/fhir+json", body: bundle, status: 200},
			wrong: req{token: ehr, ctype: "application/fhir+json", body: bundle, status: 401},
			other: req{cert: devBCert, ctype: "application/fhir+json", body: bundleA, status: 403}},
		"POST /oauth2/token": {
			right: req{basic: [2]string{"ehr-basic", ehrSecret}, ctype: "application/x-www-form-urlencoded", body: []byte("grant_type=client_credentials"), status: 200},
			wrong: req{basic: [2]string{"ehr-basic", ehrSecret}, ctype: "application/x-www-form-urlencoded", body: []byte("grant_type=client_credentials&scope=system/AuditEvent.rs"), status: 400},
			// Site b's client gets a token of site b (what it may do with it: the other cases).
			other: req{basic: [2]string{"ehr-b-basic", ehrBSecret}, ctype: "application/x-www-form-urlencoded", body: []byte("grant_type=client_credentials"), status: 200}},
		"GET /fhir/Observation/{id}": {
			right: req{token: ehr, path: "/fhir/Observation/" + ids[0], status: 200},
			wrong: req{token: admin, path: "/fhir/Observation/" + ids[0], status: 403},
			other: req{token: ehrB, path: "/fhir/Observation/" + ids[0], status: 404}},
		"GET /fhir/Observation": {
			right: req{token: ehr, path: "/fhir/Observation?patient=pat-1", status: 200},
			wrong: req{token: ehrRO, path: "/fhir/Observation?patient=pat-1", status: 403},
			other: req{token: ehrB, path: "/fhir/Observation?patient=pat-1", status: 200, lacks: ids[0]}},
		"POST /fhir/Patient": {
			right: req{token: admin, ctype: "application/fhir+json", body: patient(), status: 201},
			wrong: req{token: ehrRO, ctype: "application/fhir+json", body: patient(), status: 403},
			// The first site's identifier is free in site b: identifiers are unique per site.
			other: req{token: adminB, ctype: "application/fhir+json", status: 201,
				body: []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"walk"}]}`)}},
		"GET /fhir/Patient/{id}": {
			right: req{token: ehr, path: "/fhir/Patient/" + pat.ID, status: 200},
			wrong: req{token: auditor, path: "/fhir/Patient/" + pat.ID, status: 403},
			other: req{token: ehrB, path: "/fhir/Patient/" + pat.ID, status: 404}},
		"GET /fhir/Patient": {
			right: req{token: ehr, path: "/fhir/Patient?identifier=urn:test|none", status: 200},
			wrong: req{token: auditor, path: "/fhir/Patient?identifier=urn:test|none", status: 403},
			other: req{token: ehrB, path: "/fhir/Patient?identifier=urn:test|walk", status: 200, lacks: pat.ID}},
		"GET /fhir/Device/{id}": {
			right: req{token: ehr, path: "/fhir/Device/dev-2", status: 200},
			wrong: req{token: auditor, path: "/fhir/Device/dev-2", status: 403},
			other: req{token: ehrB, path: "/fhir/Device/dev-2", status: 404}},
		"GET /fhir/DiagnosticReport/{id}": {
			right: req{token: ehr, path: "/fhir/DiagnosticReport/" + reportID, status: 200},
			wrong: req{token: ehrRO, path: "/fhir/DiagnosticReport/" + reportID, status: 403},
			other: req{token: ehrB, path: "/fhir/DiagnosticReport/" + reportID, status: 404}},
		"GET /fhir/DiagnosticReport": {
			right: req{token: ehr, path: "/fhir/DiagnosticReport?patient=pat-1", status: 200},
			wrong: req{token: auditor, path: "/fhir/DiagnosticReport?patient=pat-1", status: 403},
			other: req{token: ehrB, path: "/fhir/DiagnosticReport?patient=pat-1", status: 200, lacks: reportID}},
		"GET /fhir/Specimen/{id}": {
			right: req{token: ehr, path: "/fhir/Specimen/" + specimenID, status: 200},
			wrong: req{token: ehrRO, path: "/fhir/Specimen/" + specimenID, status: 403},
			other: req{token: ehrB, path: "/fhir/Specimen/" + specimenID, status: 404}},
		"GET /fhir/Organization/{id}": {
			right: req{token: ehr, path: "/fhir/Organization/default", status: 200},
			wrong: req{token: auditor, path: "/fhir/Organization/default", status: 403},
			other: req{token: ehrB, path: "/fhir/Organization/default", status: 404}},
		"GET /fhir/AuditEvent": {
			right: req{token: auditor, path: "/fhir/AuditEvent?action=C", status: 200},
			wrong: req{token: ehr, path: "/fhir/AuditEvent?action=C", status: 403},
			other: req{token: auditorB, path: "/fhir/AuditEvent?action=C", status: 200, lacks: pat.ID}},
		"GET /audit/checkpoint": {
			right: req{token: auditor, status: 200},
			wrong: req{token: admin, status: 403},
			// The checkpoint commits to the whole log and holds no entry.
			other: req{token: auditorB, status: 200}},
		"GET /audit/proof/inclusion": {
			right: req{token: auditor, path: "/audit/proof/inclusion?index=0&size=1", status: 200},
			wrong: req{token: ehr, path: "/audit/proof/inclusion?index=0&size=1", status: 403},
			other: req{token: auditorB, path: "/audit/proof/inclusion?index=0&size=1", status: 404}},
		"GET /audit/proof/consistency": {
			right: req{token: auditor, path: "/audit/proof/consistency?from=1&to=2", status: 200},
			wrong: req{token: ehr, path: "/audit/proof/consistency?from=1&to=2", status: 403},
			// A consistency proof is hashes only.
			other: req{token: auditorB, path: "/audit/proof/consistency?from=1&to=2", status: 200}},
		"GET /updates/metadata/{name}": {
			right: req{cert: pumpCert, path: "/updates/metadata/1.pump-a.json", status: 200},
			wrong: req{token: ehr, path: "/updates/metadata/1.pump-a.json", status: 401},
			// Least privilege: a device sees its own model's role only.
			other: req{cert: devBCert, path: "/updates/metadata/1.pump-a.json", status: 404}},
		"GET /updates/targets/{path...}": {
			right: req{cert: pumpCert, path: updatePath, status: 200},
			wrong: req{token: ehr, path: updatePath, status: 401},
			other: req{cert: devBCert, path: updatePath, status: 404}},
		"GET /updates/offer": {
			right: req{cert: devCert, status: 204},
			wrong: req{token: ehr, status: 401},
			// Site b's device is in no rollout: offered nothing.
			other: req{cert: devBCert, status: 204}},
		"POST /updates/report": {
			right: req{cert: devCert, ctype: "application/json", body: []byte(`{"version":"1.0.0","state":"installed"}`), status: 204},
			wrong: req{token: ehr, ctype: "application/json", body: []byte(`{"version":"1.0.0","state":"installed"}`), status: 401},
			// Site b's device reporting for the first site's device.
			other: req{cert: devBCert, ctype: "application/json", body: []byte(`{"version":"1.0.0","state":"installed","device":"dev-2"}`), status: 403}},
		"GET /posture": {
			right: req{token: admin, status: 200},
			wrong: req{token: ehr, status: 403},
			// Site b's auditor sees no device of the first site (pump-walk is one).
			other: req{token: auditorB, status: 200, lacks: "pump-walk"}},
		"PUT /admin/devices/{id}": {
			right: req{token: admin, path: "/admin/devices/dev-2", ctype: "application/json", body: []byte(`{"patient":"pat-1"}`), status: 200},
			wrong: req{token: ehr, path: "/admin/devices/dev-2", ctype: "application/json", body: []byte(`{"patient":"pat-1"}`), status: 403},
			other: req{token: adminB, path: "/admin/devices/dev-2", ctype: "application/json", body: []byte(`{"patient":"pat-1"}`), status: 404}},
		"POST /admin/patients/{id}/erasure": {
			right: req{token: admin, path: "/admin/patients/pat-x/erasure", ctype: "application/json", body: []byte(`{"reason":"r"}`), status: 201},
			wrong: req{token: ehr, path: "/admin/patients/pat-x/erasure", ctype: "application/json", body: []byte(`{"reason":"r"}`), status: 403},
			// Site b's admin requests for site b's own patient of that id.
			other: req{token: adminB, path: "/admin/patients/pat-x/erasure", ctype: "application/json", body: []byte(`{"reason":"r"}`), status: 201}},
		"POST /admin/erasures/{id}/approve": {
			right: req{token: admin, path: "/admin/erasures/" + erq.ID + "/approve", status: 200},
			wrong: req{token: ehr, path: "/admin/erasures/" + erq.ID + "/approve", status: 403},
			other: req{token: adminB, path: "/admin/erasures/" + erq.ID + "/approve", status: 404}},
		"PUT /admin/patients/{id}/legal-hold": {
			right: req{token: admin, path: "/admin/patients/pat-held/legal-hold", ctype: "application/json", body: []byte(`{"reason":"r"}`), status: 201},
			wrong: req{token: auditor, path: "/admin/patients/pat-held/legal-hold", ctype: "application/json", body: []byte(`{"reason":"r"}`), status: 403},
			other: req{token: adminB, path: "/admin/patients/pat-held/legal-hold", ctype: "application/json", body: []byte(`{"reason":"r"}`), status: 201}},
		"DELETE /admin/patients/{id}/legal-hold": {
			right: req{token: admin, path: "/admin/patients/pat-held-2/legal-hold", status: 204},
			wrong: req{token: ehr, path: "/admin/patients/pat-held-2/legal-hold", status: 403},
			// The hold is the first site's: site b has none on its patient of that id.
			other: req{token: adminB, path: "/admin/patients/pat-held-2/legal-hold", status: 404}},
	}
	send := func(t *testing.T, rt httpapi.Route, q req) int {
		t.Helper()
		path := rt.Pattern
		if q.path != "" {
			path = q.path
		}
		if q.pathFn != nil {
			path = q.pathFn()
		}
		hr, _ := http.NewRequest(rt.Method, e.url+path, bytes.NewReader(q.body))
		if q.ctype != "" {
			hr.Header.Set("Content-Type", q.ctype)
		}
		if q.prefer {
			hr.Header.Set("Prefer", "respond-async")
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
		if resp.StatusCode >= 500 {
			t.Logf("%s %s: %d %s", rt.Method, path, resp.StatusCode, buf.Bytes())
		}
		if q.lacks != "" && strings.Contains(buf.String(), q.lacks) {
			t.Errorf("the answer holds %q, another site's: %s", q.lacks, buf.Bytes())
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
			if c.other.status == 0 {
				t.Fatal("route has no cross-site case: add one (other) to TestDenyByDefault")
			}
			if got := send(t, rt, c.other); got != c.other.status {
				t.Fatalf("from another site: %d, want %d", got, c.other.status)
			}
		})
	}
}

// addSiteClient registers an API client of site with a secret and returns the secret.
func (e *env) addSiteClient(id string, role vitalgate.Role, site string) string {
	e.t.Helper()
	secret, _ := auth.NewSecret(nil)
	hash, _ := auth.HashSecret(secret, fastHash, nil)
	c := vitalgate.Client{ID: id, Site: site, Role: role, SecretHash: hash, CreatedAt: e.clock.Now()}
	if err := e.store.CreateClient(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// addSiteDevice registers a device of site assigned to that site's patient and returns its
// enrollment secret.
func (e *env) addSiteDevice(id, patient, site string) string {
	e.t.Helper()
	secret, _ := auth.NewSecret(nil)
	hash, _ := auth.HashSecret(secret, fastHash, nil)
	now := e.clock.Now()
	if err := e.store.CreateDevice(context.Background(), vitalgate.Device{
		ID: id, Site: site, Status: vitalgate.DeviceActive, PatientIndex: e.vault.SitePatientIndex(site, patient),
		CreatedAt: now, UpdatedAt: now, EnrollSecretHash: hash, EnrollExpiresAt: now.Add(24 * time.Hour),
	}); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// seedLab stores a DiagnosticReport and a Specimen of patient (default site) as ingest stores
// a laboratory message's, sealed under the patient's key, and returns their ids.
func seedLab(t *testing.T, e *env, patient string) (reportID, specimenID string) {
	t.Helper()
	ctx := context.Background()
	pidx := e.vault.SitePatientIndex(vitalgate.DefaultSite, patient)
	now := e.clock.Now().UTC()
	var rs []vitalgate.SealedResource
	for _, r := range []struct{ typ, id, body string }{
		{"DiagnosticReport", "lab-report-1", `{"resourceType":"DiagnosticReport","id":"lab-report-1","status":"final","code":{"text":"panel"},"subject":{"reference":"Patient/` + patient + `"}}`},
		{"Specimen", "lab-specimen-1", `{"resourceType":"Specimen","id":"lab-specimen-1","subject":{"reference":"Patient/` + patient + `"}}`},
	} {
		sealed, err := e.vault.SealIn(ctx, vitalgate.DefaultSite, pidx, r.typ, r.id, 1, []byte(r.body))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, vitalgate.SealedResource{Type: r.typ, ID: r.id, Version: 1, Site: vitalgate.DefaultSite,
			PatientIndex: pidx, Effective: now, LastUpdated: now, Body: sealed})
	}
	if err := e.store.CreateResources(ctx, rs); err != nil {
		t.Fatal(err)
	}
	return "lab-report-1", "lab-specimen-1"
}
