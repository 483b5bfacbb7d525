package e2e_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/console"
)

// XSS payloads stored in fields people type: a device model and a patient's identifier
// and name. The console must show them as text.
const (
	xssModel = `<img src=x onerror="document.title='pwned-model'">`
	xssIdent = `<script>document.title='pwned-ident'</script>`
	xssName  = `"><svg onload="document.title='pwned-name'">`
)

// consoleEnv is a running server with a patient in the care team of clinician doc (pa, with
// readings from device dev-a), a patient outside it (pb), and console users ada (admin),
// doc (clinician) and aud (deployment auditor), each with its one-time setup code.
type consoleEnv struct {
	srv    *server
	dir    string
	pa, pb string
	setup  map[string]string
}

func startConsole(t *testing.T, extra ...string) *consoleEnv {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	var ini struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(run(t, "init", "--data", dir, "--json")), &ini); err != nil || ini.ClientSecret == "" {
		t.Fatalf("init --json: %v", err)
	}
	srv := startServerAt(t, dir, freeAddr(t), extra...)
	tok := clientToken(t, srv, ini.ClientID, ini.ClientSecret)
	e := &consoleEnv{srv: srv, dir: dir, setup: map[string]string{}}
	e.pa = createNamedPatient(t, srv, tok, xssIdent, xssName)
	e.pb = createNamedPatient(t, srv, tok, "mrn-other", "Other Patient")
	secret := strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", "dev-a", "--patient", e.pa, "--model", xssModel))
	run(t, "device", "add", "--data", dir, "--id", "dev-b", "--patient", e.pb, "--model", "pump-b")
	run(t, "device", "add", "--data", dir, "--id", "dev-c", "--patient", e.pb, "--model", "pump-c")
	cert := srv.enroll(t, "dev-a", secret)
	c := srv.client(&cert)
	for i := range 6 {
		status, body, _, err := post(context.Background(), c, srv.url+"/fhir/Observation",
			observation(e.pa, "dev-a", fmt.Sprint(70+3*i), time.Now().Add(-time.Duration(6-i)*10*time.Second)))
		if err != nil || status != 201 {
			t.Fatalf("post observation: %d %v %s", status, err, body)
		}
	}
	for _, u := range [][]string{{"ada", "admin"}, {"doc", "clinician", "--patient", e.pa}, {"aud", "auditor", "--site", "*"}} {
		e.setup[u[0]] = strings.TrimSpace(run(t, append([]string{"user", "add", "--data", dir, "--id", u[0], "--role", u[1]}, u[2:]...)...))
	}
	return e
}

// createNamedPatient stores a Patient with the identifier value and name given, and returns its id.
func createNamedPatient(t *testing.T, srv *server, token, ident, name string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"resourceType": "Patient", "identifier": []any{map[string]any{"system": "urn:test:mrn", "value": ident}},
		"name": []any{map[string]any{"text": name}}, "gender": "female"})
	req, _ := http.NewRequest("POST", srv.url+"/fhir/Patient", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := srv.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct{ ID string }
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, &p); resp.StatusCode != 201 || p.ID == "" {
		t.Fatalf("create patient: %d %s", resp.StatusCode, b)
	}
	return p.ID
}

// person is a browser-like HTTP client of one user: its cookies, and the last TOTP step it
// used (a code is good once).
type person struct {
	t      *testing.T
	c      *http.Client
	base   string
	secret []byte
	last   int64
}

func (e *consoleEnv) anonymous(t *testing.T) *person {
	jar, _ := cookiejar.New(nil)
	c := e.srv.client(nil)
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &person{t: t, c: c, base: e.srv.url}
}

var formTokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// get returns the status, body and headers of a GET.
func (p *person) get(path string) (int, string, http.Header) {
	p.t.Helper()
	resp, err := p.c.Get(p.base + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// formToken reads the form token of a page.
func (p *person) formToken(path string) string {
	p.t.Helper()
	_, body, _ := p.get(path)
	m := formTokenRE.FindStringSubmatch(body)
	if m == nil {
		p.t.Fatalf("no form token on %s:\n%s", path, body)
	}
	return m[1]
}

// post sends a form (with headers h) and returns the status and body.
func (p *person) post(path string, form url.Values, h map[string]string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest("POST", p.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postBody sends body with headers h and returns the status and body.
func (p *person) postBody(path, body string, h map[string]string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest("POST", p.base+path, strings.NewReader(body))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// code returns an authenticator code for a step not used before: the oldest the server
// still accepts (one step back), waiting for the clock when every acceptable one is used.
func (p *person) code() string {
	var o auth.TOTP
	for {
		cur := o.Step(time.Now())
		step := max(p.last+1, cur-1)
		if step <= cur+1 {
			p.last = step
			return o.Code(p.secret, step)
		}
		time.Sleep(time.Second) // every acceptable step used: wait for the next one
	}
}

var secretRE = regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`)

// signUp completes a user's first sign-in with its setup code, as a person at a browser.
func (e *consoleEnv) signUp(t *testing.T, id string) *person {
	t.Helper()
	p := e.anonymous(t)
	tok := p.formToken("/console/setup")
	status, body := p.post("/console/setup", url.Values{"csrf_token": {tok}, "id": {id}, "setup": {e.setup[id]}}, nil)
	m := secretRE.FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("setup of %s: %d\n%s", id, status, body)
	}
	var err error
	if p.secret, err = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(m[1]); err != nil {
		t.Fatal(err)
	}
	status, body = p.post("/console/setup/complete", url.Values{"csrf_token": {tok}, "id": {id}, "setup": {e.setup[id]},
		"password": {"correct horse battery " + id}, "password2": {"correct horse battery " + id}, "code": {p.code()}}, nil)
	if status != http.StatusSeeOther {
		t.Fatalf("setup/complete of %s: %d\n%s", id, status, body)
	}
	return p
}

// TestConsole walks every console route (deny by default: a case per route, and a route
// without one fails): without a session, with a role the route's permission is not granted
// to, and with the right one; a clinician is refused a patient outside the care team;
// stored XSS payloads come back escaped; a state-changing request from another origin or
// without its form token is refused; every page carries the security headers.
func TestConsole(t *testing.T) {
	e := startConsole(t)
	ada, doc, aud := e.signUp(t, "ada"), e.signUp(t, "doc"), e.signUp(t, "aud")
	anon := e.anonymous(t)
	anonToken := anon.formToken("/console/login")

	type req struct {
		who    *person
		method string
		path   string
		form   url.Values
		formFn func() url.Values // the form, made when the request is sent (authenticator codes)
		token  bool              // send the page's form token
		json   string            // send this JSON body (the form token as X-Form-Token) instead of a form
		status int               // expected
		has    string            // the body must contain
	}
	// A session of its own for the logout case.
	logoutUser := e.anonymous(t)
	logoutUser.secret = doc.secret
	logoutUser.last = doc.last
	cases := map[string]struct{ anon, wrong, right req }{
		"GET /console/static/{file}": {right: req{who: anon, path: "/console/static/console.css", status: 200, has: "Vitalgate console"}},
		"GET /console/login":         {right: req{who: anon, path: "/console/login", status: 200, has: `name="password"`}},
		"POST /console/login": {
			wrong: req{who: anon, method: "POST", path: "/console/login", form: url.Values{"id": {"doc"}, "password": {"nope"}, "code": {"000000"}}, status: 403},
			right: req{who: anon, method: "POST", path: "/console/login", token: true, form: url.Values{"id": {"doc"}, "password": {"nope"}, "code": {"000000"}}, status: 401, has: "sign-in failed"}},
		"GET /console/setup": {right: req{who: anon, path: "/console/setup", status: 200, has: `name="setup"`}},
		"POST /console/setup": {
			wrong: req{who: anon, method: "POST", path: "/console/setup", form: url.Values{"id": {"ada"}, "setup": {"x"}}, status: 403},
			right: req{who: anon, method: "POST", path: "/console/setup", token: true, form: url.Values{"id": {"ada"}, "setup": {e.setup["ada"]}}, status: 401, has: "sign-in failed"}},
		"POST /console/setup/complete": {
			right: req{who: anon, method: "POST", path: "/console/setup/complete", token: true, form: url.Values{"id": {"doc"}, "setup": {e.setup["doc"]},
				"password": {"correct horse battery x"}, "password2": {"correct horse battery x"}, "code": {"123456"}}, status: 401}},
		"POST /console/login/passkey/begin": {
			wrong: req{who: anon, method: "POST", path: "/console/login/passkey/begin", json: "{}", status: 403},
			right: req{who: anon, method: "POST", path: "/console/login/passkey/begin", json: "{}", token: true, status: 200, has: `"challenge"`}},
		"POST /console/login/passkey/finish": {
			wrong: req{who: anon, method: "POST", path: "/console/login/passkey/finish", json: "{}", status: 403},
			right: req{who: anon, method: "POST", path: "/console/login/passkey/finish", json: "{}", token: true, status: 400, has: "could not be read"}},
		"GET /console/passkeys": {anon: req{who: anon, path: "/console/passkeys", status: 303}, right: req{who: doc, path: "/console/passkeys", status: 200, has: "passkey-add"}},
		"POST /console/passkeys/begin": {anon: req{who: anon, method: "POST", path: "/console/passkeys/begin", json: "{}", token: true, status: 401},
			wrong: req{who: doc, method: "POST", path: "/console/passkeys/begin", json: "{}", status: 403},
			right: req{who: doc, method: "POST", path: "/console/passkeys/begin", json: "{}", token: true, status: 200, has: `"challenge"`}},
		"POST /console/passkeys/finish": {anon: req{who: anon, method: "POST", path: "/console/passkeys/finish", json: "{}", token: true, status: 401},
			wrong: req{who: doc, method: "POST", path: "/console/passkeys/finish", json: "{}", status: 403},
			right: req{who: doc, method: "POST", path: "/console/passkeys/finish", json: "{}", token: true, status: 400, has: "could not be read"}},
		"POST /console/reauth/passkey/begin": {anon: req{who: anon, method: "POST", path: "/console/reauth/passkey/begin", json: "{}", token: true, status: 401},
			wrong: req{who: doc, method: "POST", path: "/console/reauth/passkey/begin", json: "{}", status: 403},
			right: req{who: doc, method: "POST", path: "/console/reauth/passkey/begin", json: "{}", token: true, status: 400, has: "no passkey"}},
		"GET /console/{$}": {anon: req{who: anon, path: "/console/", status: 303}, right: req{who: doc, path: "/console/", status: 200, has: "Patients"}},
		"POST /console/logout": {
			anon:  req{who: anon, method: "POST", path: "/console/logout", token: true, status: 401},
			wrong: req{who: doc, method: "POST", path: "/console/logout", form: url.Values{"csrf_token": {anonToken}}, status: 403},
			right: req{who: logoutUser, method: "POST", path: "/console/logout", token: true, status: 303}},
		"GET /console/fleet": {anon: req{who: anon, path: "/console/fleet", status: 303}, wrong: req{who: doc, path: "/console/fleet", status: 403},
			right: req{who: ada, path: "/console/fleet", status: 200, has: "dev-a"}},
		"GET /console/devices/{id}": {anon: req{who: anon, path: "/console/devices/dev-b", status: 303}, wrong: req{who: doc, path: "/console/devices/dev-b", status: 403},
			right: req{who: ada, path: "/console/devices/dev-b", status: 200, has: `id="revoke"`}},
		"POST /console/devices/{id}/revoke": {anon: req{who: anon, method: "POST", path: "/console/devices/dev-b/revoke", token: true, status: 401},
			wrong: req{who: doc, method: "POST", path: "/console/devices/dev-b/revoke", token: true,
				form: url.Values{"password": {"correct horse battery doc"}, "code": {"000000"}}, status: 403}, // refused before any check of the code
			right: req{who: ada, method: "POST", path: "/console/devices/dev-b/revoke", token: true, formFn: func() url.Values {
				return url.Values{"password": {"correct horse battery ada"}, "code": {ada.code()}}
			}, status: 303}},
		"GET /console/patients": {anon: req{who: anon, path: "/console/patients", status: 303}, wrong: req{who: aud, path: "/console/patients", status: 403},
			right: req{who: doc, path: "/console/patients?identifier=" + url.QueryEscape("urn:test:mrn|"+xssIdent), status: 200, has: e.pa}},
		"GET /console/patients/{id}": {anon: req{who: anon, path: "/console/patients/" + e.pa, status: 303}, wrong: req{who: aud, path: "/console/patients/" + e.pa, status: 403},
			right: req{who: doc, path: "/console/patients/" + e.pa + "?range=6h", status: 200, has: "<polyline"}},
		"GET /console/audit": {anon: req{who: anon, path: "/console/audit", status: 303}, wrong: req{who: doc, path: "/console/audit", status: 403},
			right: req{who: aud, path: "/console/audit?agent=doc", status: 200, has: "console-login"}},
		"GET /console/audit/{index}": {anon: req{who: anon, path: "/console/audit/1", status: 303}, wrong: req{who: ada, path: "/console/audit/1", status: 403},
			right: req{who: aud, path: "/console/audit/1", status: 200, has: "AuditEvent"}},
	}
	// The logout case's own session.
	{
		tok := logoutUser.formToken("/console/login")
		if status, body := logoutUser.post("/console/login", url.Values{"csrf_token": {tok}, "id": {"doc"}, "password": {"correct horse battery doc"}, "code": {logoutUser.code()}}, nil); status != 303 {
			t.Fatalf("login for the logout case: %d %s", status, body)
		}
		doc.last = logoutUser.last
	}
	do := func(t *testing.T, r req) {
		t.Helper()
		var status int
		var body string
		if r.method == "POST" {
			form := url.Values{}
			if r.formFn != nil {
				r.form = r.formFn()
			}
			for k, v := range r.form {
				form[k] = v
			}
			if r.token {
				form.Set("csrf_token", r.who.formToken(map[bool]string{true: "/console/", false: "/console/login"}[r.who != anon && r.who.secret != nil]))
			}
			if r.json != "" {
				h := map[string]string{"Content-Type": "application/json"}
				if t := form.Get("csrf_token"); t != "" {
					h["X-Form-Token"] = t
				}
				status, body = r.who.postBody(r.path, r.json, h)
			} else {
				status, body = r.who.post(r.path, form, nil)
			}
		} else {
			status, body, _ = r.who.get(r.path)
		}
		if status != r.status || !strings.Contains(body, r.has) {
			t.Fatalf("%s %s: %d, want %d with %q\n%s", r.method, r.path, status, r.status, r.has, body)
		}
	}
	for _, rt := range console.RouteTable() {
		name := rt.Method + " " + rt.Pattern
		c, ok := cases[name]
		if !ok {
			t.Errorf("route %s has no case in the console route walk", name)
			continue
		}
		if rt.Auth == console.AuthSession && (c.anon.who == nil || c.anon.status == 200) {
			t.Errorf("route %s needs a session but has no refused anonymous case", name)
		}
		t.Run(name, func(t *testing.T) {
			for _, r := range []req{c.anon, c.wrong, c.right} {
				if r.who != nil {
					do(t, r)
				}
			}
		})
	}

	t.Run("revoke needs re-authentication", func(t *testing.T) {
		run(t, "device", "add", "--data", e.dir, "--id", "dev-d", "--patient", e.pb)
		tok := ada.formToken("/console/devices/dev-d")
		for _, f := range []url.Values{{"password": {"correct horse battery ada"}, "code": {"000000"}},
			{"password": {"wrong password!"}, "code": {"000000"}}, {}} {
			f.Set("csrf_token", tok)
			if status, body := ada.post("/console/devices/dev-d/revoke", f, nil); status != 401 || !strings.Contains(body, `id="revoke"`) {
				t.Fatalf("revoke without re-authentication: %d\n%s", status, body)
			}
		}
		if _, body, _ := ada.get("/console/devices/dev-d"); !strings.Contains(body, `id="status">active`) {
			t.Fatalf("dev-d is no longer active:\n%s", body)
		}
		if _, body, _ := ada.get("/console/devices/dev-b"); !strings.Contains(body, `id="status">revoked`) {
			t.Fatalf("dev-b is not revoked:\n%s", body)
		}
		_, body, _ := aud.get("/console/audit?agent=ada")
		for _, want := range []string{"console-reauth", "device-revoke"} {
			if !strings.Contains(body, want) {
				t.Errorf("the audit log lacks %s by ada", want)
			}
		}
	})
	t.Run("care team", func(t *testing.T) {
		if status, body, _ := doc.get("/console/patients/" + e.pb); status != 403 || !strings.Contains(body, "care team") {
			t.Fatalf("a patient outside the care team: %d\n%s", status, body)
		}
	})
	t.Run("stored XSS shown as text", func(t *testing.T) {
		_, fleet, _ := ada.get("/console/fleet")
		_, pats, _ := doc.get("/console/patients?identifier=" + url.QueryEscape("urn:test:mrn|"+xssIdent))
		_, chart, _ := doc.get("/console/patients/" + e.pa)
		for _, page := range []string{fleet, pats, chart} {
			for _, raw := range []string{xssModel, xssIdent, xssName, "<script>", "<img src=x", "<svg onload"} {
				if strings.Contains(page, raw) {
					t.Fatalf("page holds %q unescaped:\n%s", raw, page)
				}
			}
		}
		if !strings.Contains(fleet, "&lt;img src=x onerror=") || !strings.Contains(pats, "&lt;script&gt;") {
			t.Fatalf("the payloads are not shown escaped:\n%s\n%s", fleet, pats)
		}
	})
	t.Run("cross-origin post refused", func(t *testing.T) {
		tok := aud.formToken("/console/")
		status, _ := aud.post("/console/logout", url.Values{"csrf_token": {tok}}, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
		if status != 403 {
			t.Fatalf("cross-origin logout: %d, want 403", status)
		}
		if status, _, _ := aud.get("/console/audit"); status != 200 {
			t.Fatalf("the session ended by a refused cross-origin request: %d", status)
		}
	})
	t.Run("headers", func(t *testing.T) {
		_, _, h := doc.get("/console/patients/" + e.pa)
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") ||
			!strings.Contains(csp, "default-src 'none'") {
			t.Errorf("CSP %q", csp)
		}
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
			"Strict-Transport-Security": "max-age=", "Permissions-Policy": "camera=()", "X-Content-Type-Options": "nosniff"} {
			if !strings.Contains(h.Get(k), want) {
				t.Errorf("%s = %q, want %q", k, h.Get(k), want)
			}
		}
	})
	t.Run("session cookie", func(t *testing.T) {
		p := e.anonymous(t)
		p.secret, p.last = ada.secret, ada.last
		tok := p.formToken("/console/login")
		req, _ := http.NewRequest("POST", e.srv.url+"/console/login", strings.NewReader(url.Values{"csrf_token": {tok}, "id": {"ada"},
			"password": {"correct horse battery ada"}, "code": {p.code()}}.Encode()))
		ada.last = p.last
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := p.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var set string
		for _, c := range resp.Header.Values("Set-Cookie") {
			if strings.HasPrefix(c, console.SessionCookie+"=") {
				set = c
			}
		}
		for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
			if !strings.Contains(set, attr) {
				t.Errorf("session cookie %q lacks %s", set, attr)
			}
		}
		if strings.Contains(set, "Domain=") {
			t.Errorf("session cookie %q names a domain", set)
		}
	})
	t.Run("audited", func(t *testing.T) {
		_, body, _ := aud.get("/console/audit?agent=doc")
		for _, want := range []string{"console-factor", "console-login", "console-logout"} {
			if !strings.Contains(body, want) {
				t.Errorf("the audit log lacks %s of doc", want)
			}
		}
	})
}

// TestConsoleBrowser drives the console in headless Chromium (e2e/browser/console.mjs,
// playwright-core): sign-up with the setup code (password + TOTP), the fleet, a patient's
// chart and the audit log, stored XSS shown as text with no script run, framing and a
// cross-origin post refused, a patient outside the care team refused, a device revoked only
// after re-authentication, a passkey added and used (Chromium's virtual authenticator),
// sign-out, and the idle logoff (on a second server with a short --console-idle, so that
// a pause of a loaded machine cannot log the main flow off). Screenshots of the fleet, the
// chart, the audit log and the revoked device are kept in e2e/artifacts/ (or $VG_ARTIFACTS).
func TestConsoleBrowser(t *testing.T) {
	needTools(t, "node", "chromium")
	if _, err := os.Stat("browser/node_modules/playwright-core"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("playwright-core is not installed: .ci/run must run `npm ci` in e2e/browser")
		}
		t.Skip("playwright-core is not installed: run `npm ci` in e2e/browser (and apt-get install chromium)")
	}
	art := os.Getenv("VG_ARTIFACTS")
	if art == "" {
		art, _ = filepath.Abs("artifacts")
	}
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	e := startConsole(t)
	// A second server with a short idle timeout, for the idle logoff alone.
	const idle = 3 * time.Second
	idleDir := initDir(t)
	idleSetup := strings.TrimSpace(run(t, "user", "add", "--data", idleDir, "--id", "idle", "--role", "admin"))
	idleSrv := startServerAt(t, idleDir, freeAddr(t), "--console-idle", idle.String())
	cmd := exec.Command("node", "console.mjs")
	cmd.Dir = "browser"
	cmd.Env = append(os.Environ(), "VG_URL="+strings.Replace(e.srv.url, "127.0.0.1", "localhost", 1), "VG_ARTIFACTS="+art,
		"VG_IDLE_URL="+strings.Replace(idleSrv.url, "127.0.0.1", "localhost", 1), "VG_SETUP_IDLE="+idleSetup,
		"VG_IDLE_MS="+fmt.Sprint(idle.Milliseconds()), "VG_PA="+e.pa, "VG_PB="+e.pb,
		"VG_SETUP_ADA="+e.setup["ada"], "VG_SETUP_DOC="+e.setup["doc"], "VG_SETUP_AUD="+e.setup["aud"],
		"VG_XSS_MODEL="+xssModel, "VG_XSS_IDENT="+xssIdent)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("browser test: %v\n%s\n%s\nserver:\n%s", err, stdout.String(), stderr.String(), e.srv.stderr.String())
	}
	for _, f := range []string{"fleet.png", "patient-chart.png", "audit.png", "device-revoked.png"} {
		if st, err := os.Stat(filepath.Join(art, f)); err != nil || st.Size() < 1000 {
			t.Errorf("screenshot %s: %v", f, err)
		}
	}
	t.Logf("screenshots in %s: %s", art, strings.TrimSpace(stdout.String()))
}
