// Package assess examines a running Vitalgate deployment from the outside, the way a
// penetration tester starts: with nothing but its HTTPS address and, optionally, the CA
// certificate that should vouch for it.
//
// Run performs a fixed, bounded set of checks and returns a Report of Findings, each with a
// Severity (info, low, medium, high, critical):
//
//   - TLS: protocol versions offered (TLS 1.0 to 1.3, one pinned handshake each), TLS 1.2
//     cipher suites accepted (every suite Go knows, one at a time), and the server
//     certificate (chain, validity, expiry within 30 days, key strength, SHA-1 signatures,
//     host name).
//   - Authentication: every route of the public contract (KnownRoutes) without credentials,
//     and every bearer-token route with forged tokens (alg "none"; HS256 under a guessed
//     key). Device routes must refuse a request without a client certificate.
//   - Response headers: HSTS, X-Content-Type-Options, Cache-Control no-store, CSP; Server and
//     X-Powered-By banners that reveal versions.
//   - Robustness: an oversized (2 MiB) body, broken JSON, binary garbage and deeply nested
//     JSON must get a 4xx answer, never a 5xx or a hang.
//   - Default credentials: a short list of well-known client id and secret pairs on the
//     token endpoint, and obvious enrollment secrets on EST simpleenroll.
//   - Rate limiting: a bounded burst of failing token requests must meet a 429.
//
// Every network action goes only to the target, has a timeout and a bounded count: about
// 75 requests plus a burst of at most Options.BurstSize (300 by default), and about 30 TLS
// handshakes. The assessment is not silent: it leaves authentication failures in the
// target's audit log and, against Vitalgate, locks the assessing address out of the token
// endpoint for a minute. Run it only against deployments you are responsible for.
//
// Severity policy (why each finding is rated as it is):
//
//   - critical: a protected route answers 2xx without credentials, a device route works
//     without a client certificate, a forged token is accepted, or a default credential
//     works. Each is a direct path to patient data or device identities.
//   - high: TLS below 1.2 (RFC 8996 deprecates 1.0 and 1.1), a TLS 1.2 suite without
//     forward secrecy (static RSA key exchange) or with a broken cipher (RC4, 3DES), a
//     certificate that is expired, untrusted, for another host name, signed with SHA-1, or
//     with a weak key (RSA below 2048 bits, ECDSA below 256 bits).
//   - medium: ECDHE suites with CBC (MAC-then-encrypt, the Lucky13 family of padding
//     oracles; outside DESIGN.md's ECDHE+AEAD rule but not an immediate break), a
//     certificate expiring within 30 days, no HSTS, no Cache-Control: no-store on API
//     answers (patient data kept in caches), no rate limiting, a 5xx or a hang on malformed
//     input, a protected route answering something other than 401/403 without credentials.
//   - low: no X-Content-Type-Options: nosniff or Content-Security-Policy (defence in depth
//     for a JSON API), version banners, no TLS 1.3.
//   - info: what was observed and found in order.
package assess
