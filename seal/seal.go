// Package seal encrypts patient data at rest (DESIGN.md §4).
//
// It uses envelope encryption. Every patient has a data key (DEK), a random 32-byte
// AES-256 key that encrypts that patient's resources with [Seal], [Open] or a cached
// [Cipher]; erasing a patient's wrapped DEK erases the patient. DEKs are stored wrapped
// (encrypted) under a key-encryption key (KEK) held in a [Keyring]; KEKs carry ids
// ("kek-1", "kek-2", ...) so they can be rotated: a keyring with a new generation
// ([NewKeyring]) and [Keyring.RewrapDataKey]. Search uses keyed HMAC-SHA-256 blind indexes
// ([Keyring.BlindIndex]) under a separate index key that never rotates.
//
// Only primitives in Go's FIPS 140-3 approved set are used: AES-256-GCM, HMAC-SHA-256 and
// HKDF-SHA-256. Nonces are 96-bit random values; with the default randomness source (nil
// or crypto/rand.Reader) they are drawn by the FIPS module itself
// ([cipher.NewGCMWithRandomNonce]), so the package keeps working with GODEBUG=fips140=only.
//
// # Formats
//
// A sealed resource and a wrapped data key share one layout:
//
//	version (1 byte, = 1) | len(key id) (1 byte) | key id | nonce (12 bytes) | AES-256-GCM ciphertext and tag (16 bytes)
//
// The GCM associated data is a fixed label (different for sealed resources and wrapped
// keys, so one can never be passed off as the other), then the header (version, length and
// key id), then the caller's associated data. Changing any header byte therefore makes
// opening fail, as does opening with different associated data.
//
// # Errors
//
// Every error is a *vitalgate.Error with code EINTERNAL. A ciphertext that fails to open
// wraps [ErrOpen]; a key id the caller does not hold wraps [ErrUnknownKey]. No error message
// ever contains key material, and nothing in this package logs.
//
// The package is pure: it does no I/O. Where keys are kept (the data directory's key
// files) is package vault's concern.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/vitalgate/vitalgate"
)

// KeySize is the size in bytes of every key this package handles: KEKs, DEKs and the
// blind-index key.
const KeySize = 32

// MaxKeyIDLen is the longest key id a sealed resource or wrapped key can carry.
const MaxKeyIDLen = 255

const (
	formatVersion = 1
	nonceSize     = 12
	tagSize       = 16
	// maxPlaintext is GCM's limit for one message.
	maxPlaintext = (1<<32 - 2) * 16

	sealLabel = "vitalgate seal v1\x00"
	wrapLabel = "vitalgate wrap v1\x00"
)

var (
	// ErrOpen is wrapped by the errors returned when a sealed resource or wrapped key
	// cannot be opened: it is malformed, truncated, tampered with, or the key or
	// associated data is wrong.
	ErrOpen = errors.New("seal: message authentication failed")

	// ErrUnknownKey is wrapped by the errors returned when a sealed resource or wrapped key
	// names a key id the caller does not hold.
	ErrUnknownKey = errors.New("seal: unknown key id")
)

// AAD builds the canonical associated data binding a sealed resource to its row. Each part
// is prefixed with its length, so ("a", "bc", "") and ("ab", "c", "") differ.
func AAD(resourceType, id, version string) []byte {
	b := make([]byte, 0, 3*binary.MaxVarintLen16+len(resourceType)+len(id)+len(version))
	for _, p := range [...]string{resourceType, id, version} {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// Cipher seals and opens resources under one data key. It caches the AES-GCM state, so
// callers that handle many resources of one patient should keep it. It is safe for
// concurrent use and does not retain the raw key.
type Cipher struct {
	k *aeadKey
}

// NewCipher returns a Cipher for the 32-byte data key dek, whose id keyID (1 to
// MaxKeyIDLen bytes) is written into every sealed resource; see [SealedKeyID].
func NewCipher(dek []byte, keyID string) (*Cipher, error) {
	k, err := newAEADKey(dek, sealLabel, keyID)
	if err != nil {
		return nil, vitalgate.Internal(err, "seal: new cipher")
	}
	return &Cipher{k: k}, nil
}

// KeyID returns the id of the Cipher's data key.
func (c *Cipher) KeyID() string { return c.k.keyID }

// Seal encrypts plaintext, binding it to aad (usually built with [AAD]). rnd supplies the
// nonce: nil or crypto/rand.Reader selects the FIPS module's own generator, the only
// choice allowed in FIPS 140-3 mode; any other reader is meant for tests.
func (c *Cipher) Seal(plaintext, aad []byte, rnd io.Reader) ([]byte, error) {
	out, err := c.k.seal(plaintext, aad, rnd)
	if err != nil {
		return nil, vitalgate.Internal(err, "seal: seal")
	}
	return out, nil
}

// Open decrypts a resource sealed by [Cipher.Seal] or [Seal] with the same data key, key id
// and aad. It fails with an error wrapping [ErrUnknownKey] if sealed names another key id,
// and with one wrapping [ErrOpen] if it does not authenticate.
func (c *Cipher) Open(sealed, aad []byte) ([]byte, error) {
	if !bytes.HasPrefix(sealed, c.k.header()) {
		id, _, err := parseHeader(sealed)
		if err != nil {
			return nil, vitalgate.Internal(err, "seal: open")
		}
		return nil, vitalgate.Internal(fmt.Errorf("%w: sealed under %q, cipher holds %q", ErrUnknownKey, id, c.k.keyID), "seal: open")
	}
	pt, err := c.k.open(sealed, aad)
	if err != nil {
		return nil, vitalgate.Internal(err, "seal: open")
	}
	return pt, nil
}

// String describes the Cipher by its key id only.
func (c Cipher) String() string {
	if c.k == nil {
		return "seal.Cipher{}"
	}
	return fmt.Sprintf("seal.Cipher{key: %s}", c.k.keyID)
}

// GoString is String: a Cipher never prints key material, even with %#v.
func (c Cipher) GoString() string { return c.String() }

// Format writes String for every verb, so no fmt verb can reach key material.
func (c Cipher) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, c.String()) }

// Seal encrypts plaintext under the data key dek with id keyID, binding it to aad. It is
// [NewCipher] followed by [Cipher.Seal]; keep a Cipher when sealing many resources.
func Seal(dek []byte, keyID string, plaintext, aad []byte, rnd io.Reader) ([]byte, error) {
	c, err := NewCipher(dek, keyID)
	if err != nil {
		return nil, err
	}
	return c.Seal(plaintext, aad, rnd)
}

// Open decrypts a resource sealed under the data key dek with aad. Use [SealedKeyID] first
// to find which data key it needs.
func Open(dek []byte, sealed, aad []byte) ([]byte, error) {
	id, _, err := parseHeader(sealed)
	if err != nil {
		return nil, vitalgate.Internal(err, "seal: open")
	}
	c, err := NewCipher(dek, id)
	if err != nil {
		return nil, err
	}
	return c.Open(sealed, aad)
}

// SealedKeyID returns the id of the key that sealed (a sealed resource or a wrapped data
// key) needs. The id is not authenticated until the ciphertext is opened.
func SealedKeyID(sealed []byte) (string, error) {
	id, _, err := parseHeader(sealed)
	if err != nil {
		return "", vitalgate.Internal(err, "seal: key id")
	}
	return id, nil
}

// parseHeader splits version | len | key id off b, returning the key id and header length.
func parseHeader(b []byte) (keyID string, n int, err error) {
	if len(b) < 2 {
		return "", 0, fmt.Errorf("%w: truncated header", ErrOpen)
	}
	if b[0] != formatVersion {
		return "", 0, fmt.Errorf("%w: unsupported format version %d", ErrOpen, b[0])
	}
	l := int(b[1])
	if l == 0 || len(b) < 2+l {
		return "", 0, fmt.Errorf("%w: truncated header", ErrOpen)
	}
	return string(b[2 : 2+l]), 2 + l, nil
}

// aeadKey is one AES-256-GCM key with its key id and format label.
type aeadKey struct {
	keyID  string
	prefix []byte // label | version | len(key id) | key id
	hdrLen int    // length of the header at the end of prefix

	random cipher.AEAD // FIPS-approved: the module draws the nonce; also used to open
	block  cipher.Block

	plainOnce sync.Once
	plain     cipher.AEAD // caller-supplied nonces, only for non-default rnd
	plainErr  error
}

func newAEADKey(key []byte, label, keyID string) (*aeadKey, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("key must be %d bytes, got %d", KeySize, len(key))
	}
	idLen := len(keyID)
	if idLen == 0 || idLen > MaxKeyIDLen {
		return nil, fmt.Errorf("key id must be 1 to %d bytes, got %d", MaxKeyIDLen, idLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	random, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	prefix := make([]byte, 0, len(label)+2+len(keyID))
	prefix = append(prefix, label...)
	prefix = append(prefix, formatVersion, byte(idLen))
	prefix = append(prefix, keyID...)
	return &aeadKey{keyID: keyID, prefix: prefix, hdrLen: 2 + len(keyID), random: random, block: block}, nil
}

func (k *aeadKey) header() []byte { return k.prefix[len(k.prefix)-k.hdrLen:] }

// ad returns the GCM associated data: label | header | aad.
func (k *aeadKey) ad(aad []byte) []byte {
	ad := make([]byte, 0, len(k.prefix)+len(aad))
	ad = append(ad, k.prefix...)
	return append(ad, aad...)
}

func (k *aeadKey) seal(plaintext, aad []byte, rnd io.Reader) ([]byte, error) {
	if uint64(len(plaintext)) > maxPlaintext {
		return nil, errors.New("plaintext too large")
	}
	out := make([]byte, k.hdrLen, k.hdrLen+nonceSize+len(plaintext)+tagSize)
	copy(out, k.header())
	if defaultRand(rnd) {
		// #nosec G407 -- k.random is cipher.NewGCMWithRandomNonce: it requires a nil nonce, draws a fresh random one per call and prepends it to the ciphertext
		return k.random.Seal(out, nil, plaintext, k.ad(aad)), nil
	}
	if err := customRandAllowed(); err != nil {
		return nil, err
	}
	k.plainOnce.Do(func() { k.plain, k.plainErr = cipher.NewGCM(k.block) })
	if k.plainErr != nil {
		return nil, k.plainErr
	}
	var nonce [nonceSize]byte
	if _, err := io.ReadFull(rnd, nonce[:]); err != nil {
		return nil, fmt.Errorf("reading nonce: %w", err)
	}
	out = append(out, nonce[:]...)
	return k.plain.Seal(out, nonce[:], plaintext, k.ad(aad)), nil
}

// open opens sealed, whose header the caller has checked is k's.
func (k *aeadKey) open(sealed, aad []byte) ([]byte, error) {
	body := sealed[k.hdrLen:]
	if len(body) < nonceSize+tagSize {
		return nil, fmt.Errorf("%w: truncated ciphertext", ErrOpen)
	}
	pt, err := k.random.Open(nil, nil, body, k.ad(aad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// defaultRand reports whether rnd selects the system's secure generator.
func defaultRand(rnd io.Reader) bool { return rnd == nil || rnd == rand.Reader }

// customRandAllowed refuses caller-supplied randomness in FIPS 140-3 mode, where keys and
// nonces must come from the module's approved generator.
func customRandAllowed() error {
	if fips140.Enabled() {
		return errors.New("in FIPS 140-3 mode randomness must come from crypto/rand: pass nil or crypto/rand.Reader")
	}
	return nil
}

// readRand fills b from rnd (nil means crypto/rand.Reader).
func readRand(rnd io.Reader, b []byte) error {
	if defaultRand(rnd) {
		rand.Read(b)
		return nil
	}
	if err := customRandAllowed(); err != nil {
		return err
	}
	if _, err := io.ReadFull(rnd, b); err != nil {
		return fmt.Errorf("reading randomness: %w", err)
	}
	return nil
}
