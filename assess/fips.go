package assess

import (
	"bufio"
	"bytes"
	"crypto/fips140"
	"strings"
)

// ownFIPSMode is the assessor's own FIPS 140-3 mode (GODEBUG=fips140): off, on or only.
func ownFIPSMode() string {
	switch {
	case !fips140.Enabled():
		return "off"
	case fips140.Enforced():
		return "only"
	}
	return "on"
}

// noteCryptoMode reports the cryptographic mode a Vitalgate target states in its /readyz
// answer ("crypto: fips140=only; secrets pbkdf2-sha256 (FIPS data dir)"), and the
// assessor's own mode.
func (a *assessor) noteCryptoMode(readyz []byte) {
	stated := ""
	sc := bufio.NewScanner(bytes.NewReader(readyz))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "crypto: "); ok {
			stated = strings.TrimSpace(v)
		}
	}
	f := Finding{ID: "crypto-mode", Severity: Info, Evidence: "GET /readyz; the assessor itself ran with fips140=" + ownFIPSMode()}
	switch {
	case stated == "":
		f.Title = "The target does not state its FIPS 140-3 mode"
		f.Detail = "Vitalgate states it in /readyz (crypto: fips140=...; secrets ...)."
	case strings.HasPrefix(stated, "fips140=only") && strings.Contains(stated, "FIPS data dir"):
		f.Title = "FIPS 140-3 mode: " + stated
		f.Detail = "The server runs with GODEBUG=fips140=only on a FIPS data dir: only FIPS-approved cryptography, secrets hashed with PBKDF2."
	default:
		f.Title = "Not in FIPS 140-3 mode: " + stated
		f.Detail = "For FIPS 140-3 operation create the data dir with `vitalgate init --fips` and run the server with GODEBUG=fips140=only."
	}
	a.report.add(f)
}

// noteUnprobedSuites reports that, in FIPS 140-3 mode, the assessor cannot offer the TLS 1.2
// suites FIPS does not approve, so it cannot tell whether the target accepts them.
func (a *assessor) noteUnprobedSuites() {
	if !fips140.Enabled() {
		return
	}
	a.report.add(Finding{ID: "tls-suites-unprobed", Severity: Info,
		Title:  "TLS 1.2 suites outside FIPS 140-3 not probed: the assessor runs in FIPS 140-3 mode",
		Detail: "Go's FIPS mode offers only approved suites (ECDHE with AES-GCM, or AES-CBC with SHA-256), so acceptance of SHA-1 CBC, RSA key exchange, 3DES, RC4 or ChaCha20-Poly1305 suites is not tested. Run the assessment without GODEBUG=fips140 to probe them."})
}
