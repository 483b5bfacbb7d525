// Package auth authenticates Vitalgate's callers: one-time enrollment secrets and client
// secrets (stored only as argon2id hashes) and, later, OAuth2 access tokens and SMART scopes.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"
)

// HashParams are argon2id cost parameters. The defaults follow OWASP's recommendation for
// argon2id (19 MiB, 2 passes, 1 lane).
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultHashParams are the parameters new hashes use.
var DefaultHashParams = HashParams{Memory: 19 * 1024, Time: 2, Threads: 1}

// maxHashMemory bounds the memory a stored hash may ask for when verified, so a tampered hash
// cannot exhaust memory.
const maxHashMemory = 256 * 1024

// NewSecret returns a random secret of 32 bytes, base64url-encoded without padding (43
// characters), safe to paste into a shell or an HTTP Basic header.
func NewSecret(rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret returns the argon2id hash of secret as a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashSecret(secret string, p HashParams, rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	salt := make([]byte, 16)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return "", fmt.Errorf("generate salt: %w", err)
	}
	sum := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

// ErrMalformedHash is returned by VerifySecret for a stored hash it cannot read.
var ErrMalformedHash = errors.New("malformed argon2id hash")

// VerifySecret reports whether secret matches the PHC-encoded argon2id hash, in constant time
// with respect to the secret.
func VerifySecret(hash, secret string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, ErrMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, ErrMalformedHash
	}
	var p HashParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, ErrMalformedHash
	}
	if p.Memory == 0 || p.Memory > maxHashMemory || p.Time == 0 || p.Time > 16 || p.Threads == 0 {
		return false, ErrMalformedHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, ErrMalformedHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	keyLen := len(want)
	if err != nil || keyLen < 16 || keyLen > 64 {
		return false, ErrMalformedHash
	}
	got := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, uint32(keyLen))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
