package auth

import (
	"crypto/fips140"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// The secret hashing algorithms. Every stored hash names its algorithm (a PHC string:
// $argon2id$... or $pbkdf2-sha256$...), so VerifySecret picks the right one.
const (
	// HashArgon2id is argon2id (RFC 9106), the default: memory-hard, but not a FIPS 140-3
	// approved algorithm, and computed outside Go's FIPS module (golang.org/x/crypto).
	HashArgon2id = "argon2id"
	// HashPBKDF2SHA256 is PBKDF2 with HMAC-SHA-256 (NIST SP 800-132), computed by Go's
	// FIPS 140-3 module (crypto/pbkdf2): the algorithm of data dirs made with init --fips.
	HashPBKDF2SHA256 = "pbkdf2-sha256"
)

// HashParams say how new secrets are hashed: the algorithm and its cost parameters. The
// zero Algorithm means argon2id.
type HashParams struct {
	Algorithm string // HashArgon2id ("" too) or HashPBKDF2SHA256

	Memory  uint32 // argon2id: KiB
	Time    uint32 // argon2id: passes
	Threads uint8  // argon2id: lanes

	Iterations int // PBKDF2: iterations of HMAC-SHA-256
}

// DefaultHashParams are the parameters new hashes use: argon2id as OWASP's Password
// Storage Cheat Sheet recommends (19 MiB, 2 passes, 1 lane).
var DefaultHashParams = HashParams{Algorithm: HashArgon2id, Memory: 19 * 1024, Time: 2, Threads: 1}

// FIPSHashParams are the parameters of new hashes in a FIPS data dir (init --fips):
// PBKDF2-HMAC-SHA-256 with 600,000 iterations, a 128-bit random salt and a 256-bit output.
// 600,000 is OWASP's Password Storage Cheat Sheet figure for PBKDF2-HMAC-SHA256; NIST SP
// 800-132 asks for a salt of at least 128 bits and an iteration count "as large as
// feasible" (at least 1,000), and SP 800-63B-4 for a cost factor as high as practical.
var FIPSHashParams = HashParams{Algorithm: HashPBKDF2SHA256, Iterations: 600_000}

// Bounds on what a stored hash may ask for when verified, so that a tampered hash cannot
// exhaust memory or CPU.
const (
	maxHashMemory     = 256 * 1024 // argon2id KiB
	maxPBKDF2Iter     = 10_000_000
	minPBKDF2Iter     = 1_000 // SP 800-132's floor
	pbkdf2SaltBytes   = 16    // SP 800-132: at least 128 bits
	pbkdf2OutputBytes = 32
)

// ErrMalformedHash is returned by VerifySecret for a stored hash it cannot read.
var ErrMalformedHash = errors.New("malformed secret hash")

// ErrNotApproved is returned when argon2id is asked for while the process runs with
// GODEBUG=fips140=only: argon2id is not a FIPS 140-3 approved algorithm, and Go's
// enforcement covers only the standard library, so this package refuses it itself.
var ErrNotApproved = errors.New("argon2id is not FIPS 140-3 approved and this process runs with GODEBUG=fips140=only; " +
	"secrets of a FIPS data dir (vitalgate init --fips) are hashed with PBKDF2-HMAC-SHA-256")

// Validate reports whether p can hash secrets: a known algorithm with cost parameters in
// range.
func (p HashParams) Validate() error {
	switch p.Algorithm {
	case "", HashArgon2id:
		if p.Memory == 0 || p.Memory > maxHashMemory || p.Time == 0 || p.Time > 16 || p.Threads == 0 {
			return fmt.Errorf("argon2id parameters out of range (memory 1 to %d KiB, time 1 to 16, threads at least 1)", maxHashMemory)
		}
	case HashPBKDF2SHA256:
		if p.Iterations < minPBKDF2Iter || p.Iterations > maxPBKDF2Iter {
			return fmt.Errorf("PBKDF2 iterations must be %d to %d", minPBKDF2Iter, maxPBKDF2Iter)
		}
	default:
		return fmt.Errorf("unknown secret hash algorithm %q (want %s or %s)", p.Algorithm, HashArgon2id, HashPBKDF2SHA256)
	}
	return nil
}

// argon2Allowed refuses argon2id in FIPS 140-only mode (GODEBUG=fips140=only). It is the
// one gate in front of every argon2 call in this package.
func argon2Allowed() error {
	if fips140.Enforced() {
		return ErrNotApproved
	}
	return nil
}

// HashSecret returns the hash of secret as a PHC string that names its algorithm:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//	$pbkdf2-sha256$i=600000$<salt>$<hash>
//
// (salt and hash in unpadded standard base64). rnd supplies the salt; nil means
// crypto/rand.Reader. With GODEBUG=fips140=only, argon2id fails with ErrNotApproved and
// the PBKDF2 salt always comes from crypto/rand (the FIPS module's generator).
func HashSecret(secret string, p HashParams, rnd io.Reader) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	if p.Algorithm == HashPBKDF2SHA256 {
		salt := make([]byte, pbkdf2SaltBytes)
		if rnd == nil || fips140.Enabled() {
			rand.Read(salt) // the module's approved DRBG
		} else if _, err := io.ReadFull(rnd, salt); err != nil {
			return "", fmt.Errorf("generate salt: %w", err)
		}
		sum, err := pbkdf2.Key(sha256.New, secret, salt, p.Iterations, pbkdf2OutputBytes)
		if err != nil {
			return "", fmt.Errorf("pbkdf2: %w", err)
		}
		return fmt.Sprintf("$%s$i=%d$%s$%s", HashPBKDF2SHA256, p.Iterations,
			base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
	}
	if err := argon2Allowed(); err != nil {
		return "", err
	}
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

// HashAlgorithm returns the algorithm a stored hash names (HashArgon2id or
// HashPBKDF2SHA256), or ErrMalformedHash.
func HashAlgorithm(hash string) (string, error) {
	parts := strings.Split(hash, "$")
	if len(parts) < 2 || parts[0] != "" {
		return "", ErrMalformedHash
	}
	switch parts[1] {
	case HashArgon2id, HashPBKDF2SHA256:
		return parts[1], nil
	}
	return "", ErrMalformedHash
}

// VerifySecret reports whether secret matches the stored hash, with the algorithm the hash
// names, in constant time with respect to the secret. A hash it cannot read gives
// ErrMalformedHash; an argon2id hash in a process running with GODEBUG=fips140=only gives
// ErrNotApproved.
func VerifySecret(hash, secret string) (bool, error) {
	alg, err := HashAlgorithm(hash)
	if err != nil {
		return false, err
	}
	if alg == HashPBKDF2SHA256 {
		return verifyPBKDF2(hash, secret)
	}
	return verifyArgon2id(hash, secret)
}

func verifyPBKDF2(hash, secret string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 5 || !strings.HasPrefix(parts[2], "i=") {
		return false, ErrMalformedHash
	}
	iter, err := strconv.Atoi(parts[2][2:])
	if err != nil || iter < minPBKDF2Iter || iter > maxPBKDF2Iter {
		return false, ErrMalformedHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[3])
	if err != nil || len(salt) < pbkdf2SaltBytes || len(salt) > 64 {
		return false, ErrMalformedHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(want) < pbkdf2OutputBytes || len(want) > 64 {
		return false, ErrMalformedHash
	}
	got, err := pbkdf2.Key(sha256.New, secret, salt, iter, len(want))
	if err != nil {
		return false, fmt.Errorf("pbkdf2: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func verifyArgon2id(hash, secret string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
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
	if err := argon2Allowed(); err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, uint32(keyLen))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
