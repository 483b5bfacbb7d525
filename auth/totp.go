package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"
	"time"
)

// TOTP is the time-based one-time password algorithm of RFC 6238 with HMAC-SHA-256 (RFC
// 4226's dynamic truncation, 6 digits, 30-second steps), written on crypto/hmac: it is a
// short, fully specified construction over an approved primitive, not a primitive of its
// own, and so not worth a dependency. RFC 6238 allows SHA-1, SHA-256 and SHA-512; SHA-256 is
// used because HMAC-SHA-1 is not in this module's approved set (Go's FIPS 140-only mode
// refuses it). The otpauth URI names the algorithm for the authenticator app (Aegis,
// FreeOTP, 1Password, Bitwarden and others honour it).
type TOTP struct{}

// Parameters of the codes.
const (
	totpDigits   = 6
	totpPeriod   = 30 * time.Second
	totpSkew     = 1  // steps accepted either side of now (clock drift, typing time)
	totpKeyBytes = 20 // 160 bits, RFC 4226 §4's recommendation
)

// NewSecret returns a new random shared secret (rnd: crypto/rand when nil).
func (o TOTP) NewSecret(rnd io.Reader) ([]byte, error) {
	s, err := NewSecret(rnd) // 32 random bytes, encoded
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(s))
	return sum[:totpKeyBytes], nil
}

// Step returns the time step of t.
func (TOTP) Step(t time.Time) int64 { return t.Unix() / int64(totpPeriod/time.Second) }

// Code returns the code of secret at time step step.
func (o TOTP) Code(secret []byte, step int64) string {
	return hotp(sha256.New, secret, uint64(max(step, 0))) // #nosec G115 -- clamped to >= 0: steps count up from the Unix epoch
}

// hotp is RFC 4226 §5.3: HMAC of the counter, dynamic truncation, modulo 10^digits.
func hotp(newHash func() hash.Hash, secret []byte, counter uint64) string {
	m := hmac.New(newHash, secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", totpDigits, v%1_000_000)
}

// Verify returns the time step whose code matches code at time now, within one step either
// side, and whether one does. The comparison is in constant time. The caller must refuse a
// step it accepted before (UserStore.UseTOTPStep): a code is good once.
func (o TOTP) Verify(secret []byte, code string, now time.Time) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != totpDigits || len(secret) == 0 {
		return 0, false
	}
	step := o.Step(now)
	var found int64
	ok := 0
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		if subtle.ConstantTimeCompare([]byte(o.Code(secret, step+d)), []byte(code)) == 1 {
			found, ok = step+d, 1
		}
	}
	return found, ok == 1
}

// EncodeSecret returns secret in the base32 form authenticator apps take (no padding).
func EncodeSecret(secret []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
}

// URI returns the otpauth:// URI of secret for account of issuer (what a QR code would
// carry; Key URI Format of Google Authenticator).
func (o TOTP) URI(issuer, account string, secret []byte) string {
	q := url.Values{"secret": {EncodeSecret(secret)}, "issuer": {issuer}, "algorithm": {"SHA256"},
		"digits": {fmt.Sprint(totpDigits)}, "period": {fmt.Sprint(int(totpPeriod / time.Second))}}
	return "otpauth://totp/" + url.PathEscape(issuer+":"+account) + "?" + q.Encode()
}
