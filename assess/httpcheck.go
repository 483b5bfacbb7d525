package assess

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// checkRoutes probes every route of KnownRoutes without credentials and every token route
// with forged tokens. It keeps the answers as samples for checkHeaders.
func (a *assessor) checkRoutes(ctx context.Context) {
	var refused, missing, public, forgedOK []string
	tokens := forgedTokens(a.base, a.opts.Now())
	for _, rt := range KnownRoutes {
		hdr := http.Header{}
		if rt.ContentType != "" {
			hdr.Set("Content-Type", rt.ContentType)
		}
		res := a.send(ctx, rt.Method, rt.Path, hdr, bodyOf(rt))
		if res.aborted {
			return
		}
		if res.status != 0 {
			a.samples = append(a.samples, sample{label: rt.String(), status: res.status, header: res.header})
		}
		if res.status == http.StatusTooManyRequests {
			a.saw429 = append(a.saw429, rt.String()+" without credentials")
		}
		if rt.Access == Public {
			if rt.Path == "/readyz" && res.status == http.StatusOK {
				a.noteCryptoMode(res.body)
			}
			public = append(public, rt.String()+" → "+res.statusText())
			continue
		}
		switch f, verdict := judgeUnauthenticated(rt, res); verdict {
		case verdictRefused:
			refused = append(refused, rt.String()+" → "+res.statusText())
		case verdictMissing:
			missing = append(missing, rt.String()+" → "+res.statusText())
		default:
			a.report.add(f)
		}
		if rt.Access != Token {
			continue
		}
		for _, ft := range tokens {
			h := hdr.Clone()
			h.Set("Authorization", "Bearer "+ft.token)
			fr := a.send(ctx, rt.Method, rt.Path, h, bodyOf(rt))
			if fr.aborted {
				return
			}
			if fr.status == http.StatusTooManyRequests {
				a.saw429 = append(a.saw429, rt.String()+" with a forged token")
			}
			if f, bad := judgeForged(rt, ft.name, res, fr); bad {
				a.report.add(f)
			} else {
				forgedOK = append(forgedOK, rt.String()+" ("+ft.name+") → "+fr.statusText())
			}
		}
	}
	a.report.add(Finding{ID: "routes-public", Severity: Info, Title: fmt.Sprintf("%d public routes answered", len(public)),
		Detail: "These routes are public by design (health, discovery, EST CA certificates).", Evidence: strings.Join(public, "\n")})
	if len(refused) > 0 {
		a.report.add(Finding{ID: "routes-refused", Severity: Info,
			Title:    fmt.Sprintf("%d protected routes refused requests without credentials", len(refused)),
			Evidence: strings.Join(refused, "\n")})
	}
	if len(missing) > 0 {
		a.report.add(Finding{ID: "routes-missing", Severity: Info,
			Title:    fmt.Sprintf("%d routes of the public contract were not found on the target", len(missing)),
			Detail:   "A 404 or 405 without credentials: the route is absent (or hidden) on this deployment.",
			Evidence: strings.Join(missing, "\n")})
	}
	if len(forgedOK) > 0 {
		a.report.add(Finding{ID: "tokens-forged-refused", Severity: Info,
			Title:    fmt.Sprintf("Forged bearer tokens were refused %d times", len(forgedOK)),
			Evidence: strings.Join(forgedOK, "\n")})
	}
}

// bodyOf returns a route's probe body, nil if none.
func bodyOf(rt Route) []byte {
	if rt.Body == "" {
		return nil
	}
	return []byte(rt.Body)
}

// verdict is how an answer to a probe is judged.
type verdict int

const (
	verdictRefused verdict = iota // refused, as it should be
	verdictMissing                // the route does not exist there
	verdictFinding                // something to report
)

// judgeUnauthenticated judges the answer of a protected route to a request without
// credentials: 401, 403 and 429 are refusals; 404 and 405 mean the route is absent; a 2xx
// is a route left open (critical); anything else is reported.
func judgeUnauthenticated(rt Route, res result) (Finding, verdict) {
	ev := fmt.Sprintf("%s without credentials → %s", rt, res.statusText())
	what := "without credentials"
	if rt.Access == Device {
		what = "without a client certificate"
	}
	s := res.status
	switch {
	case s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusTooManyRequests:
		return Finding{}, verdictRefused
	case s == http.StatusNotFound || s == http.StatusMethodNotAllowed:
		return Finding{}, verdictMissing
	case s >= 200 && s < 300:
		title := "Route left open: " + rt.String() + " succeeds " + what
		detail := "A " + string(rt.Access) + " route answered 2xx to an anonymous request: anyone who can reach the server can use it. Deny by default and authenticate before handling."
		if rt.Access == Device {
			title = "Device route accepts requests " + what + ": " + rt.String()
			detail = "Device routes must demand a device client certificate (mutual TLS); otherwise anyone can submit observations or obtain certificates."
		}
		return Finding{ID: "route-open:" + rt.String(), Severity: Critical, Title: title, Detail: detail, Evidence: ev}, verdictFinding
	case s >= 300 && s < 400:
		return Finding{ID: "route-redirect:" + rt.String(), Severity: Low, Title: rt.String() + " redirects instead of refusing",
			Detail: "An API should answer 401 to a request without credentials.", Evidence: ev}, verdictFinding
	case s >= 400 && s < 500:
		return Finding{ID: "route-not-401:" + rt.String(), Severity: Medium,
			Title:  fmt.Sprintf("%s answers %d %s instead of 401", rt, s, what),
			Detail: "The request reached input handling before authentication, so unauthenticated callers exercise the parsers and can learn about the server. Authenticate first, then validate.", Evidence: ev}, verdictFinding
	case s >= 500:
		return Finding{ID: "route-5xx:" + rt.String(), Severity: Medium, Title: rt.String() + " fails with a server error " + what,
			Detail: "An anonymous request should be refused with 401, not cause an internal error.", Evidence: ev}, verdictFinding
	case res.timeout:
		return Finding{ID: "route-hang:" + rt.String(), Severity: Medium, Title: rt.String() + " does not answer " + what,
			Detail: "The request timed out; a refusal should be immediate.", Evidence: ev}, verdictFinding
	case rt.Access == Device:
		// The server refused the connection (e.g. it requires a client certificate in the
		// TLS handshake): that is a refusal too.
		return Finding{}, verdictRefused
	}
	return Finding{ID: "route-no-answer:" + rt.String(), Severity: Low, Title: rt.String() + " gave no HTTP answer " + what, Evidence: ev}, verdictFinding
}

// judgeForged judges the answer of a token route to a forged token, compared with its
// answer to no token (base). 401 and 429 are refusals, as is the same answer as without a
// token; a 2xx is critical; any other difference means the forged token got past
// authentication or the server answers invalid tokens with something other than 401.
func judgeForged(rt Route, name string, base, res result) (Finding, bool) {
	ev := fmt.Sprintf("%s with a forged token (%s) → %s; without a token → %s", rt, name, res.statusText(), base.statusText())
	id := "token-forged:" + rt.String() + ":" + name
	s := res.status
	switch {
	case s >= 200 && s < 300:
		return Finding{ID: id, Severity: Critical, Title: "Forged bearer token accepted (" + name + ") on " + rt.String(),
			Detail: "Anyone can mint a token the server trusts. Verify the signature with a fixed algorithm allow-list (never alg none, never HMAC with a guessable key) and check issuer, audience and expiry.", Evidence: ev}, true
	case s == http.StatusUnauthorized || s == http.StatusTooManyRequests || (s != 0 && s == base.status):
		return Finding{}, false
	case s >= 500:
		return Finding{ID: id, Severity: Medium, Title: "A forged bearer token (" + name + ") causes a server error on " + rt.String(),
			Detail: "Token verification must refuse bad tokens with 401, not fail.", Evidence: ev}, true
	case s == 0 && res.timeout:
		return Finding{ID: id, Severity: Medium, Title: "A forged bearer token (" + name + ") makes " + rt.String() + " hang", Evidence: ev}, true
	case s == 0:
		return Finding{}, false
	}
	return Finding{ID: id, Severity: High, Title: fmt.Sprintf("A forged bearer token (%s) gets %d instead of 401 on %s", name, s, rt),
		Detail: "The answer differs from the answer without a token, so the forged token got past authentication, or the server answers invalid tokens with something other than 401 invalid_token (RFC 6750 §3.1). Either way, investigate.", Evidence: ev}, true
}

// forgedToken is a bearer token no honest server would accept.
type forgedToken struct {
	name  string
	token string
}

// forgedTokens returns an unsigned token (alg "none") and an HS256 token under the guessed
// key "secret", both claiming an admin client with every scope, issued for base.
func forgedTokens(base string, now time.Time) []forgedToken {
	claims := map[string]any{
		"iss": base, "aud": []string{base, base + "/fhir"}, "sub": "admin", "client_id": "admin",
		"role": "admin", "scope": "system/*.cruds user/*.cruds", "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(4 * time.Minute).Unix(), "jti": "vitalgate-assess-forged",
	}
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	none := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
	signingInput := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(payload)
	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write([]byte(signingInput))
	hs := signingInput + "." + enc(mac.Sum(nil))
	return []forgedToken{{"alg none", none}, {"HS256 key \"secret\"", hs}}
}

// headerRule is one security header every API answer should carry.
type headerRule struct {
	id, name string
	severity Severity
	ok       func(v string) bool
	detail   string
}

var headerRules = []headerRule{
	{"header-hsts", "Strict-Transport-Security", Medium,
		func(v string) bool { return maxAge(v) > 0 },
		"Without HSTS a browser-based client (SMART app) can be downgraded to plain HTTP by an active attacker. Send Strict-Transport-Security: max-age=63072000; includeSubDomains."},
	{"header-nosniff", "X-Content-Type-Options", Low,
		func(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "nosniff") },
		"Without nosniff a browser may sniff a JSON answer as HTML or script. Send X-Content-Type-Options: nosniff."},
	{"header-cache", "Cache-Control", Medium,
		func(v string) bool { return strings.Contains(strings.ToLower(v), "no-store") },
		"API answers may carry patient data or tokens; without no-store, browsers and intermediaries may keep them. Send Cache-Control: no-store."},
	{"header-csp", "Content-Security-Policy", Low,
		func(v string) bool { return strings.TrimSpace(v) != "" },
		"A restrictive CSP (default-src 'none'; frame-ancestors 'none') keeps any answer rendered by a browser inert. Defence in depth for a JSON API."},
}

// maxAge returns the max-age of an HSTS value, -1 if absent or malformed.
func maxAge(v string) int64 {
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "max-age") {
			n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// versionRe matches banner values that carry a version number.
var versionRe = regexp.MustCompile(`[0-9]`)

// checkHeaders checks the security headers and banners of the answers kept by
// checkRoutes (fetching GET /fhir/metadata if there are none).
func (a *assessor) checkHeaders(ctx context.Context) {
	if len(a.samples) == 0 {
		res := a.send(ctx, "GET", "/fhir/metadata", nil, nil)
		if res.status == 0 {
			return
		}
		a.samples = append(a.samples, sample{label: "GET /fhir/metadata", status: res.status, header: res.header})
	}
	var present []string
	for _, rule := range headerRules {
		var lacking []string
		for _, s := range a.samples {
			if !rule.ok(s.header.Get(rule.name)) {
				lacking = append(lacking, fmt.Sprintf("%s → %d (%s: %q)", s.label, s.status, rule.name, s.header.Get(rule.name)))
			}
		}
		if len(lacking) == 0 {
			present = append(present, rule.name)
			continue
		}
		title := fmt.Sprintf("%s missing or weak on %d of %d answers", rule.name, len(lacking), len(a.samples))
		if len(lacking) == len(a.samples) {
			title = rule.name + " missing or weak on every answer"
		}
		a.report.add(Finding{ID: rule.id, Severity: rule.severity, Title: title, Detail: rule.detail, Evidence: strings.Join(lacking, "\n")})
	}
	if len(present) > 0 {
		a.report.add(Finding{ID: "headers-present", Severity: Info,
			Title: fmt.Sprintf("Security headers on all %d answers: %s", len(a.samples), strings.Join(present, ", "))})
	}
	if v := a.samples[0].header.Get("Strict-Transport-Security"); maxAge(v) > 0 && maxAge(v) < 180*24*3600 {
		a.report.add(Finding{ID: "header-hsts-short", Severity: Low, Title: "HSTS max-age is shorter than 180 days",
			Detail: "Use at least one year (31536000).", Evidence: "Strict-Transport-Security: " + v})
	}
	banners := map[string]bool{}
	for _, s := range a.samples {
		for _, name := range []string{"Server", "X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version"} {
			for _, v := range s.header.Values(name) {
				banners[name+": "+v] = true
			}
		}
	}
	var versioned, plain []string
	for b := range banners {
		if versionRe.MatchString(b[strings.Index(b, ":"):]) {
			versioned = append(versioned, b)
		} else {
			plain = append(plain, b)
		}
	}
	sort.Strings(versioned)
	sort.Strings(plain)
	if len(versioned) > 0 {
		a.report.add(Finding{ID: "banner-version", Severity: Low, Title: "Response headers reveal software versions",
			Detail: "Version banners tell an attacker which known vulnerabilities to try. Remove them.", Evidence: strings.Join(versioned, "\n")})
	}
	if len(plain) > 0 {
		a.report.add(Finding{ID: "banner", Severity: Info, Title: "Response headers name the server software", Evidence: strings.Join(plain, "\n")})
	}
}

// defaultClientCredentials are well-known client id and secret pairs tried on the token
// endpoint, the likeliest first: only GuessesPerID of each id's are tried, so that the
// assessment never uses up a real client's failure allowance.
var defaultClientCredentials = [][2]string{
	{"admin", "admin"}, {"admin", "password"}, {"admin", "vitalgate"}, {"admin", "changeme"},
	{"vitalgate", "vitalgate"}, {"root", "root"}, {"test", "test"}, {"ehr", "ehr"},
	{"client", "secret"}, {"demo", "demo"},
}

// defaultEnrollCredentials are guessable device id and enrollment secret pairs tried on
// EST simpleenroll (with a real CSR, so that a success would issue a certificate).
var defaultEnrollCredentials = [][2]string{
	{"monitor-0001", "password"}, {"device-1", "changeme"}, {"test", "test"},
}

// checkWeakCredentials tries the default credentials. Any success is critical.
func (a *assessor) checkWeakCredentials(ctx context.Context) {
	var tried []string
	stopped := ""
	hdr := http.Header{"Content-Type": {ctForm}}
	for _, c := range defaultClientCredentials {
		if !a.limiter.mayTry("token", c[0], c[0]+":"+c[1]) {
			continue
		}
		h := hdr.Clone()
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c[0]+":"+c[1])))
		res := a.send(ctx, "POST", "/oauth2/token", h, []byte("grant_type=client_credentials"))
		if res.aborted {
			return
		}
		ev := fmt.Sprintf("POST /oauth2/token client_secret_basic %s:%s → %s", c[0], c[1], res.statusText())
		tried = append(tried, ev)
		if res.status >= 200 && res.status < 300 {
			a.report.add(Finding{ID: "default-credentials:oauth2:" + c[0], Severity: Critical,
				Title:  fmt.Sprintf("Default client credentials work: %s:%s", c[0], c[1]),
				Detail: "A well-known client id and secret obtained an access token. Revoke the client and issue a random secret (vitalgate client add prints one).", Evidence: ev})
		}
		if res.status == http.StatusTooManyRequests {
			a.saw429 = append(a.saw429, ev)
			stopped = "token endpoint: stopped after " + strconv.Itoa(len(tried)) + " attempts by 429 (rate limiting)"
			break
		}
	}
	n := len(tried)
	for _, c := range defaultEnrollCredentials {
		if !a.limiter.mayTry("est", c[0], c[0]+":"+c[1]) {
			continue
		}
		csr, err := enrollCSR(c[0])
		if err != nil {
			break
		}
		h := http.Header{"Content-Type": {ctPKCS10}}
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c[0]+":"+c[1])))
		res := a.send(ctx, "POST", "/.well-known/est/simpleenroll", h, csr)
		if res.aborted {
			return
		}
		ev := fmt.Sprintf("POST /.well-known/est/simpleenroll Basic %s:%s with a CSR for CN=%s → %s", c[0], c[1], c[0], res.statusText())
		tried = append(tried, ev)
		if res.status >= 200 && res.status < 300 {
			a.report.add(Finding{ID: "default-credentials:est:" + c[0], Severity: Critical,
				Title:  fmt.Sprintf("A guessable enrollment secret works: %s:%s", c[0], c[1]),
				Detail: "A device identity was issued for an obvious secret. Enrollment secrets must be random, one-time and short-lived (vitalgate device add prints one).", Evidence: ev})
		}
		if res.status == http.StatusTooManyRequests {
			a.saw429 = append(a.saw429, ev)
			if stopped != "" {
				stopped += "; "
			}
			stopped += "EST: stopped after " + strconv.Itoa(len(tried)-n) + " attempts by 429 (rate limiting)"
			break
		}
	}
	total := len(tried) + len(a.limiter.skipped)
	if stopped != "" {
		a.report.add(Finding{ID: "default-credentials-incomplete", Severity: Low,
			Title:    fmt.Sprintf("Default credentials: only %d of %d tried, the rest were refused by rate limiting", len(tried), total),
			Detail:   "Throttling is right, but the untried credentials were not checked. Run the assessment again from another address, or after the lockout (a minute for Vitalgate).\n" + stopped,
			Evidence: strings.Join(tried, "\n")})
		return
	}
	a.report.add(Finding{ID: "default-credentials-tried", Severity: Info,
		Title: fmt.Sprintf("%d default or guessable credentials tried, none worked", len(tried)), Evidence: strings.Join(tried, "\n")})
}

// enrollCSR returns a base64 PKCS#10 request for a fresh P-256 key with common name cn.
func enrollCSR(cn string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		return nil, err
	}
	return []byte(base64.StdEncoding.EncodeToString(der)), nil
}

// malformedPayload is a hostile request body.
type malformedPayload struct {
	name string
	body []byte
}

// malformedPayloads are the hostile bodies: 2 MiB, broken JSON, binary garbage (every byte
// value, NULs and invalid UTF-8) and JSON nested 100 000 deep.
func malformedPayloads() []malformedPayload {
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7 + i/256)
	}
	return []malformedPayload{
		{"oversized body (2 MiB)", bytes.Repeat([]byte("A"), 2<<20)},
		{"broken JSON", []byte(`{"resourceType":"Patient","name":[{"family":"x"`)},
		{"binary garbage", garbage},
		{"deeply nested JSON", []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000))},
	}
}

// malformedTargets are the routes that get the hostile bodies: the token endpoint (which
// parses its body before authenticating the client), EST enrollment and two resource
// routes, each with its own content type.
var malformedTargets = []Route{
	{Method: "POST", Path: "/oauth2/token", ContentType: ctForm},
	{Method: "POST", Path: "/.well-known/est/simpleenroll", ContentType: ctPKCS10},
	{Method: "POST", Path: "/fhir/Patient", ContentType: ctFHIR},
	{Method: "POST", Path: "/fhir/Observation", ContentType: ctFHIR},
}

// checkMalformed sends the hostile bodies. A 4xx is right; a closed connection is
// acceptable; a 5xx, a 2xx or a hang is reported (medium).
func (a *assessor) checkMalformed(ctx context.Context) {
	var fine []string
	for _, rt := range malformedTargets {
		for _, p := range malformedPayloads() {
			res := a.send(ctx, rt.Method, rt.Path, http.Header{"Content-Type": {rt.ContentType}}, p.body)
			if res.aborted {
				return
			}
			ev := fmt.Sprintf("%s with %s (%d bytes, %s) → %s", rt, p.name, len(p.body), rt.ContentType, res.statusText())
			id := "malformed:" + rt.String() + ":" + p.name
			switch s := res.status; {
			case s >= 400 && s < 500:
				fine = append(fine, ev)
			case s >= 500:
				a.report.add(Finding{ID: id, Severity: Medium, Title: fmt.Sprintf("%s fails with %d on %s", rt, s, p.name),
					Detail: "Malformed input must be refused with a 4xx; a server error hints at unchecked parsing or exhausted resources.", Evidence: ev})
			case s >= 200 && s < 400:
				a.report.add(Finding{ID: id, Severity: Medium, Title: fmt.Sprintf("%s accepts %s (%d)", rt, p.name, s),
					Detail: "Malformed or oversized input should be refused with a 4xx.", Evidence: ev})
			case res.timeout:
				a.report.add(Finding{ID: id, Severity: Medium, Title: fmt.Sprintf("%s hangs on %s", rt, p.name),
					Detail: fmt.Sprintf("No answer within %s. Limit body size, nesting depth and read time, and answer 4xx at once.", a.opts.RequestTimeout), Evidence: ev})
			default:
				fine = append(fine, ev+" (connection closed: acceptable)")
			}
		}
	}
	a.report.add(Finding{ID: "malformed-refused", Severity: Info,
		Title: fmt.Sprintf("%d malformed or oversized requests were refused", len(fine)), Evidence: strings.Join(fine, "\n")})
}

// checkRateLimit looks for rate limiting. A 429 seen by an earlier check is evidence
// enough; otherwise it sends a bounded burst of token requests with wrong client
// credentials (at most BurstSize requests within BurstDuration, BurstConcurrency at once)
// and stops at the first 429. No 429 at all is a medium finding.
func (a *assessor) checkRateLimit(ctx context.Context) {
	if len(a.saw429) > 0 {
		a.report.add(Finding{ID: "rate-limit", Severity: Info, Title: "Rate limiting observed (429 Too Many Requests)",
			Evidence: strings.Join(a.saw429, "\n")})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, a.opts.BurstDuration)
	defer cancel()
	const path = "/oauth2/token"
	hdr := http.Header{"Content-Type": {ctForm}}
	hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(ProbeClientID+":wrong-secret")))
	var (
		next, first429 atomic.Int64
		mu             sync.Mutex
		counts         = map[string]int{}
		wg             sync.WaitGroup
	)
	start := time.Now()
	for range a.opts.BurstConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && first429.Load() == 0 {
				i := next.Add(1)
				if i > int64(a.opts.BurstSize) {
					return
				}
				res := a.send(ctx, "POST", path, hdr, []byte("grant_type=client_credentials"))
				if res.aborted {
					return
				}
				if res.status == http.StatusTooManyRequests {
					first429.CompareAndSwap(0, i)
				}
				mu.Lock()
				counts[res.statusText()]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Round(time.Millisecond)
	var parts []string
	sent := 0
	for k, v := range counts {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
		sent += v
	}
	sort.Strings(parts)
	a.limiter.burst(sent)
	ev := fmt.Sprintf("%d requests to POST %s with wrong client credentials in %s (%d at once): %s",
		sent, path, elapsed, a.opts.BurstConcurrency, strings.Join(parts, ", "))
	if n := first429.Load(); n > 0 {
		a.report.add(Finding{ID: "rate-limit", Severity: Info, Title: fmt.Sprintf("Rate limiting observed: 429 by request %d of a burst", n), Evidence: ev})
		return
	}
	a.report.add(Finding{ID: "rate-limit-none", Severity: Medium, Title: "No rate limiting observed",
		Detail:   "A burst of failing client authentications met no 429 Too Many Requests, so credentials can be guessed at full speed and the server can be flooded. Throttle failed authentications per client and per address, and requests per address.",
		Evidence: ev})
}
