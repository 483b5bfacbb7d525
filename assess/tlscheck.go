package assess

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/fips140"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// tlsVersions are the protocol versions probed, oldest first. Go's client cannot offer
// SSL 3.0 (removed in Go 1.14), so SSLv3 is not probed.
var tlsVersions = []struct {
	v    uint16
	name string
}{
	{tls.VersionTLS10, "TLS 1.0"},
	{tls.VersionTLS11, "TLS 1.1"},
	{tls.VersionTLS12, "TLS 1.2"},
	{tls.VersionTLS13, "TLS 1.3"},
}

// errUnreachable marks a probe that could not even open a TCP connection.
var errUnreachable = errors.New("target unreachable")

// handshake opens a TCP connection to addr and runs a TLS handshake with cfg. A failed
// dial wraps errUnreachable; a failed handshake is returned as is.
func (a *assessor) handshake(ctx context.Context, cfg *tls.Config) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opts.HandshakeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		return tls.ConnectionState{}, fmt.Errorf("%w: %v", errUnreachable, err)
	}
	defer conn.Close()
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return tls.ConnectionState{}, err
	}
	return tc.ConnectionState(), nil
}

// probeConfig is the client configuration of a probing handshake: pinned to one version
// and, for TLS 1.2 and below, offering exactly suites. Certificates are not verified here:
// the assessor wants to see what the server offers, and verifies the chain itself
// (checkCertificates).
func (a *assessor) probeConfig(version uint16, suites []uint16) *tls.Config {
	return &tls.Config{
		ServerName:         a.host,
		InsecureSkipVerify: true,    // #nosec G402 -- probing what the server offers; the chain is verified separately by checkCertificates
		MinVersion:         version, // #nosec G402 -- deliberately probing for deprecated versions (TLS 1.0/1.1)
		MaxVersion:         version,
		CipherSuites:       suites,
	}
}

// allSuites returns every cipher suite Go implements, secure and insecure.
func allSuites() []*tls.CipherSuite {
	return append(append([]*tls.CipherSuite{}, tls.CipherSuites()...), tls.InsecureCipherSuites()...)
}

// suiteIDs returns the IDs of suites usable with version.
func suiteIDs(suites []*tls.CipherSuite, version uint16) []uint16 {
	var ids []uint16
	for _, s := range suites {
		for _, v := range s.SupportedVersions {
			if v == version {
				ids = append(ids, s.ID)
				break
			}
		}
	}
	return ids
}

// ClassifySuite rates a TLS 1.2 cipher suite the server accepts and says why: RC4 and 3DES
// are broken ciphers and static RSA key exchange has no forward secrecy (high); ECDHE with
// CBC is MAC-then-encrypt, the Lucky13 family of padding oracles, outside the ECDHE+AEAD
// rule (medium); ECDHE with AES-GCM or ChaCha20-Poly1305 is what Vitalgate offers (info).
func ClassifySuite(name string) (Severity, string) {
	switch {
	case strings.Contains(name, "_RC4_"):
		return High, "RC4 is broken (RFC 7465 prohibits it)"
	case strings.Contains(name, "_3DES_"):
		return High, "3DES has 64-bit blocks (Sweet32)"
	case !strings.HasPrefix(name, "TLS_ECDHE_"):
		return High, "static RSA key exchange: no forward secrecy, recorded traffic is readable once the key leaks"
	case strings.Contains(name, "_CBC_"):
		return Medium, "CBC with MAC-then-encrypt (padding-oracle family, Lucky13); not AEAD"
	}
	return Info, "ECDHE with an AEAD cipher"
}

// checkTLS probes protocol versions and TLS 1.2 suites and returns the certificate chain
// the server presented (from its best handshake). It returns errUnreachable if no TCP
// connection could be opened at all, or an error if no handshake succeeded.
func (a *assessor) checkTLS(ctx context.Context) ([]*x509.Certificate, error) {
	all := allSuites()
	var (
		chain     []*x509.Certificate
		accepted  []string
		unreached error
		lastErr   error
	)
	for _, tv := range tlsVersions {
		if err := ctx.Err(); err != nil {
			return chain, err
		}
		if tv.v < tls.VersionTLS12 && fips140.Enabled() {
			a.report.add(Finding{ID: "tls-version-" + idName(tv.name) + "-unprobed", Severity: Info,
				Title:  tv.name + " not probed: the assessor runs in FIPS 140-3 mode",
				Detail: "Go's FIPS mode cannot offer TLS below 1.2. Run the assessment without GODEBUG=fips140=on to probe it."})
			continue
		}
		var suites []uint16
		if tv.v != tls.VersionTLS13 {
			suites = suiteIDs(all, tv.v)
		}
		cs, err := a.handshake(ctx, a.probeConfig(tv.v, suites))
		if errors.Is(err, errUnreachable) {
			unreached = err
			continue
		}
		if err != nil {
			lastErr = err
			a.versions[tv.v] = false
			continue
		}
		a.versions[tv.v] = true
		accepted = append(accepted, tv.name)
		chain = cs.PeerCertificates // the last (highest) version wins
		switch tv.v {
		case tls.VersionTLS10, tls.VersionTLS11:
			a.report.add(Finding{ID: "tls-version-" + idName(tv.name), Severity: High,
				Title:    tv.name + " is accepted",
				Detail:   tv.name + " is deprecated (RFC 8996): no AEAD ciphers, SHA-1/MD5 in the handshake, known downgrade and padding-oracle attacks. Accept TLS 1.2 and 1.3 only (Vitalgate: TLS 1.3 by default, --tls12 for 1.2).",
				Evidence: fmt.Sprintf("handshake pinned to %s succeeded with %s", tv.name, tls.CipherSuiteName(cs.CipherSuite))})
		}
	}
	if len(accepted) == 0 {
		if lastErr == nil && unreached != nil {
			return nil, unreached
		}
		return nil, fmt.Errorf("no TLS handshake succeeded with %s (TLS 1.0 to 1.3): %v", a.addr, lastErr)
	}
	a.report.add(Finding{ID: "tls-versions", Severity: Info, Title: "TLS versions accepted: " + strings.Join(accepted, ", "),
		Evidence: "one handshake pinned to each of TLS 1.0, 1.1, 1.2, 1.3"})
	if !a.versions[tls.VersionTLS13] {
		a.report.add(Finding{ID: "tls-no-tls13", Severity: Low, Title: "TLS 1.3 is not offered",
			Detail: "TLS 1.3 removes legacy key exchange and ciphers and encrypts more of the handshake. Vitalgate speaks TLS 1.3 by default."})
	}
	if a.versions[tls.VersionTLS12] {
		a.checkSuites(ctx, all)
	} else {
		a.report.add(Finding{ID: "tls-suites-tls13-only", Severity: Info, Title: "TLS 1.2 cipher suites not enumerated: TLS 1.2 is not offered",
			Detail: "TLS 1.3 suites are all AEAD with forward secrecy."})
	}
	return chain, nil
}

// checkSuites tries each TLS 1.2 suite alone and reports the accepted ones by class.
func (a *assessor) checkSuites(ctx context.Context, all []*tls.CipherSuite) {
	a.noteUnprobedSuites()
	byClass := map[Severity][]string{}
	reasons := map[Severity][]string{}
	for _, s := range all {
		if ctx.Err() != nil {
			return
		}
		if len(suiteIDs([]*tls.CipherSuite{s}, tls.VersionTLS12)) == 0 {
			continue // TLS 1.3 suites are not configurable and always AEAD
		}
		if _, err := a.handshake(ctx, a.probeConfig(tls.VersionTLS12, []uint16{s.ID})); err != nil {
			continue
		}
		sev, why := ClassifySuite(s.Name)
		byClass[sev] = append(byClass[sev], s.Name)
		reasons[sev] = append(reasons[sev], s.Name+": "+why)
	}
	if n := byClass[High]; len(n) > 0 {
		a.report.add(Finding{ID: "tls-suites-weak", Severity: High,
			Title:    fmt.Sprintf("%d TLS 1.2 cipher suites without forward secrecy or with a broken cipher are accepted", len(n)),
			Detail:   "Offer ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 only.\n" + strings.Join(reasons[High], "\n"),
			Evidence: "handshakes pinned to TLS 1.2 offering one suite each succeeded: " + strings.Join(n, ", ")})
	}
	if n := byClass[Medium]; len(n) > 0 {
		a.report.add(Finding{ID: "tls-suites-cbc", Severity: Medium,
			Title:    fmt.Sprintf("%d TLS 1.2 CBC cipher suites are accepted", len(n)),
			Detail:   "CBC suites authenticate then encrypt and have a history of padding-oracle attacks (Lucky13). Offer AEAD suites only (AES-GCM, ChaCha20-Poly1305).",
			Evidence: "handshakes pinned to TLS 1.2 offering one suite each succeeded: " + strings.Join(n, ", ")})
	}
	if n := byClass[Info]; len(n) > 0 {
		a.report.add(Finding{ID: "tls-suites-aead", Severity: Info,
			Title:    "TLS 1.2 ECDHE+AEAD suites accepted: " + strings.Join(n, ", "),
			Evidence: "one handshake per suite Go implements, pinned to TLS 1.2"})
	}
}

// idName turns "TLS 1.0" into "tls1.0" for finding IDs.
func idName(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }

// CheckCertificates rates the certificate chain a server presented for host at time now:
// trust against roots (nil: the system roots), validity period, expiry within 30 days, host
// name, key strength and signature algorithm of each certificate presented.
func CheckCertificates(chain []*x509.Certificate, host string, roots *x509.CertPool, now time.Time) []Finding {
	if len(chain) == 0 {
		return []Finding{{ID: "cert-missing", Severity: High, Title: "The server presented no certificate"}}
	}
	var out []Finding
	leaf := chain[0]
	desc := describeCert(leaf)
	out = append(out, Finding{ID: "cert-summary", Severity: Info, Title: "Server certificate: " + leaf.Subject.String(), Evidence: desc})

	switch {
	case now.After(leaf.NotAfter):
		out = append(out, Finding{ID: "cert-expired", Severity: High, Title: "The server certificate has expired",
			Detail: "Clients that verify certificates refuse the connection; clients that do not are open to interception. Renew the certificate.", Evidence: desc})
	case now.Before(leaf.NotBefore):
		out = append(out, Finding{ID: "cert-not-yet-valid", Severity: High, Title: "The server certificate is not valid yet",
			Detail: "Check the clocks of the server and of the CA.", Evidence: desc})
	case leaf.NotAfter.Sub(now) < 30*24*time.Hour:
		out = append(out, Finding{ID: "cert-expiring", Severity: Medium,
			Title:  fmt.Sprintf("The server certificate expires in %d days", int(leaf.NotAfter.Sub(now).Hours()/24)),
			Detail: "Renew it before it expires; devices cannot connect once it has.", Evidence: desc})
	}

	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	// Verify at a time inside the validity period so that expiry (reported above) does not
	// hide whether the chain itself is trusted.
	at := now
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		which := "the system roots"
		if roots != nil {
			which = "the given CA (--ca)"
		}
		out = append(out, Finding{ID: "cert-untrusted", Severity: High, Title: "The server certificate does not verify against " + which,
			Detail:   "Clients cannot authenticate the server and may be told to skip verification. For a Vitalgate deployment pass its CA certificate (ca.crt of the data dir) with --ca.",
			Evidence: err.Error()})
	}
	if err := leaf.VerifyHostname(host); err != nil {
		out = append(out, Finding{ID: "cert-hostname", Severity: High, Title: "The server certificate is not valid for " + host,
			Detail: "Clients that verify host names refuse the connection. Issue the certificate for the names clients use (vitalgate init --host).", Evidence: err.Error()})
	}
	for i, c := range chain {
		role := "leaf"
		if i > 0 {
			role = fmt.Sprintf("chain[%d]", i)
		}
		if sev, why := keyStrength(c); sev > Info {
			out = append(out, Finding{ID: "cert-weak-key:" + role, Severity: sev, Title: "Weak key in the " + role + " certificate: " + why,
				Detail: "Use ECDSA P-256 or better, or RSA with at least 2048 bits.", Evidence: describeCert(c)})
		}
		selfSigned := i > 0 && c.CheckSignatureFrom(c) == nil // a root's own signature is not relied upon
		if weakSignature(c.SignatureAlgorithm) && !selfSigned {
			out = append(out, Finding{ID: "cert-weak-signature:" + role, Severity: High,
				Title:  "The " + role + " certificate is signed with " + c.SignatureAlgorithm.String(),
				Detail: "SHA-1 and MD5 signatures can be forged (chosen-prefix collisions). Reissue with SHA-256 or better.", Evidence: describeCert(c)})
		}
	}
	return out
}

// keyStrength rates a certificate's public key.
func keyStrength(c *x509.Certificate) (Severity, string) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return High, fmt.Sprintf("RSA %d bits", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve == nil || k.Curve.Params().BitSize < 256 {
			return High, "ECDSA below 256 bits"
		}
	case ed25519.PublicKey:
	default:
		return Medium, fmt.Sprintf("unusual key type %T", k)
	}
	return Info, ""
}

// weakSignature reports signature algorithms based on SHA-1 or MD5/MD2.
func weakSignature(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true
	}
	return false
}

// describeCert summarises a certificate in one line.
func describeCert(c *x509.Certificate) string {
	key := c.PublicKeyAlgorithm.String()
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		key = fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		if k.Curve != nil {
			key = "ECDSA " + k.Curve.Params().Name
		}
	}
	names := append(append([]string{}, c.DNSNames...), ipStrings(c.IPAddresses)...)
	return fmt.Sprintf("subject %q, issuer %q, names [%s], key %s, signature %s, valid %s to %s",
		c.Subject.String(), c.Issuer.String(), strings.Join(names, " "), key, c.SignatureAlgorithm,
		c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
