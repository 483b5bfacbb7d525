package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Signed notes (https://c2sp.org/signed-note): a text ending in a newline, a blank line, then
// one or more lines "— <key name> <base64(key id || signature)>". Only Ed25519 signatures
// (signature type 0x01) are produced or checked here.

// algEd25519 is the signed-note signature type of Ed25519.
const algEd25519 = 0x01

// maxNoteSize bounds the size of a note OpenCheckpoint will parse: 16 post-quantum signatures
// of nearly 5 kB (what the spec requires verifiers to accept) fit well within it.
const maxNoteSize = 1 << 20

// maxSignatures bounds the number of signature lines in a note (the spec requires at least 16).
const maxSignatures = 100

// sigPrefix starts every signature line: an em dash (U+2014) and a space.
const sigPrefix = "— "

// Errors of signed notes. They are returned wrapped, with details.
var (
	// ErrMalformedNote: the note is not a syntactically valid signed note or checkpoint.
	ErrMalformedNote = errors.New("audit: malformed signed note")
	// ErrUnknownKey: the note has no signature by the verifier's key (name and key id).
	ErrUnknownKey = errors.New("audit: note not signed by the expected key")
	// ErrInvalidSignature: a signature by the verifier's key does not verify.
	ErrInvalidSignature = errors.New("audit: invalid note signature")
)

// checkKeyName reports whether name is a valid signed-note key name: non-empty, valid UTF-8,
// no Unicode space, no plus sign, no control character.
func checkKeyName(name string) error {
	if name == "" {
		return errors.New("audit: empty key name")
	}
	if !utf8.ValidString(name) {
		return errors.New("audit: key name is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsSpace(r) || r == '+' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("audit: key name %q holds a space, plus sign or control character", name)
		}
	}
	return nil
}

// keyID returns the signed-note key ID of an Ed25519 key:
// the first four bytes (big-endian) of SHA-256(name || 0x0A || 0x01 || public key).
func keyID(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algEd25519})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// Signer signs checkpoints with an Ed25519 key under a key name (conventionally the log's
// origin). Create one with NewSigner.
type Signer struct {
	name string
	id   uint32
	key  ed25519.PrivateKey
}

// NewSigner returns a Signer for key under name. The name must be a valid signed-note key
// name: non-empty, without spaces or plus signs; use the log's origin, e.g.
// "vitalgate.example/audit".
func NewSigner(name string, key ed25519.PrivateKey) (*Signer, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit: Ed25519 private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	pub := key.Public().(ed25519.PublicKey)
	return &Signer{name: name, id: keyID(name, pub), key: key}, nil
}

// Name returns the signer's key name.
func (s *Signer) Name() string { return s.name }

// KeyID returns the signer's 32-bit signed-note key ID.
func (s *Signer) KeyID() uint32 { return s.id }

// Verifier returns the verifier for the signer's public key.
func (s *Signer) Verifier() Verifier {
	return Verifier{name: s.name, id: s.id, pub: s.key.Public().(ed25519.PublicKey)}
}

// signatureLine returns "— name base64(id || sig)\n" for text.
func (s *Signer) signatureLine(text []byte) string {
	sig := make([]byte, 4, 4+ed25519.SignatureSize)
	binary.BigEndian.PutUint32(sig, s.id)
	sig = append(sig, ed25519.Sign(s.key, text)...)
	return sigPrefix + s.name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// Verifier checks signatures by one Ed25519 key with one key name. Create one with NewVerifier
// or ParseVerifierKey; the zero Verifier verifies nothing.
type Verifier struct {
	name string
	id   uint32
	pub  ed25519.PublicKey
}

// NewVerifier returns a Verifier for Ed25519 public key pub under name.
func NewVerifier(name string, pub ed25519.PublicKey) (Verifier, error) {
	if err := checkKeyName(name); err != nil {
		return Verifier{}, err
	}
	if len(pub) != ed25519.PublicKeySize {
		return Verifier{}, fmt.Errorf("audit: Ed25519 public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	return Verifier{name: name, id: keyID(name, pub), pub: bytes.Clone(pub)}, nil
}

// Name returns the verifier's key name.
func (v Verifier) Name() string { return v.name }

// KeyID returns the verifier's 32-bit signed-note key ID.
func (v Verifier) KeyID() uint32 { return v.id }

// PublicKey returns a copy of the verifier's public key.
func (v Verifier) PublicKey() ed25519.PublicKey { return bytes.Clone(v.pub) }

// String returns the verifier key in the standard one-line form used by Go's sumdb/note and
// the transparency-log ecosystem: "<name>+<8 hex digits key id>+<base64(0x01 || public key)>".
// Auditors keep this line; ParseVerifierKey reads it back.
func (v Verifier) String() string {
	if v.pub == nil {
		return ""
	}
	return fmt.Sprintf("%s+%08x+%s", v.name, v.id,
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, v.pub...)))
}

// ParseVerifierKey parses a verifier key written by Verifier.String. It rejects keys of other
// signature types and keys whose key id does not match the name and public key.
func ParseVerifierKey(vkey string) (Verifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hexID, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return Verifier{}, errors.New("audit: malformed verifier key: want name+keyid+key")
	}
	if err := checkKeyName(name); err != nil {
		return Verifier{}, err
	}
	if len(hexID) != 8 {
		return Verifier{}, errors.New("audit: malformed verifier key id: want 8 hex digits")
	}
	id, err := strconv.ParseUint(hexID, 16, 32)
	if err != nil {
		return Verifier{}, fmt.Errorf("audit: malformed verifier key id: %w", err)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return Verifier{}, fmt.Errorf("audit: malformed verifier public key: %w", err)
	}
	if len(key) != 1+ed25519.PublicKeySize || key[0] != algEd25519 {
		return Verifier{}, errors.New("audit: verifier key is not an Ed25519 (type 0x01) key")
	}
	v, err := NewVerifier(name, key[1:])
	if err != nil {
		return Verifier{}, err
	}
	if v.id != uint32(id) {
		return Verifier{}, fmt.Errorf("audit: verifier key id %08x does not match its name and key (%08x)", id, v.id)
	}
	return v, nil
}

// signNote returns text (which must end in a newline) signed by s as a signed note.
func signNote(text []byte, s *Signer) []byte {
	out := make([]byte, 0, len(text)+1+len(s.name)+100)
	out = append(out, text...)
	out = append(out, '\n')
	return append(out, s.signatureLine(text)...)
}

// openNote checks the syntax of a signed note and its signature by v, and returns the note
// text (including its final newline). Per the spec, signatures by other keys are ignored; a
// signature by v's key (same name and key id) that does not verify rejects the note; and a
// note with no signature by v is rejected.
func openNote(note []byte, v Verifier) ([]byte, error) {
	if len(note) > maxNoteSize {
		return nil, fmt.Errorf("%w: note larger than %d bytes", ErrMalformedNote, maxNoteSize)
	}
	if !utf8.Valid(note) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformedNote)
	}
	for _, c := range note {
		if c < 0x20 && c != '\n' {
			return nil, fmt.Errorf("%w: control character 0x%02x", ErrMalformedNote, c)
		}
	}
	// The text is separated from the signatures by the last blank line.
	i := bytes.LastIndex(note, []byte("\n\n"))
	if i < 0 {
		return nil, fmt.Errorf("%w: no blank line before the signatures", ErrMalformedNote)
	}
	text, sigs := note[:i+1], note[i+2:]
	if len(sigs) == 0 || sigs[len(sigs)-1] != '\n' {
		return nil, fmt.Errorf("%w: no signature lines, or no final newline", ErrMalformedNote)
	}
	lines := strings.Split(string(sigs[:len(sigs)-1]), "\n")
	if len(lines) > maxSignatures {
		return nil, fmt.Errorf("%w: more than %d signatures", ErrMalformedNote, maxSignatures)
	}
	verified := false
	for _, line := range lines {
		rest, ok := strings.CutPrefix(line, sigPrefix)
		if !ok {
			return nil, fmt.Errorf("%w: signature line does not start with an em dash and a space", ErrMalformedNote)
		}
		name, b64, ok := strings.Cut(rest, " ")
		if !ok || checkKeyName(name) != nil {
			return nil, fmt.Errorf("%w: bad key name in signature line", ErrMalformedNote)
		}
		sig, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || len(sig) < 5 {
			return nil, fmt.Errorf("%w: bad signature encoding for key %q", ErrMalformedNote, name)
		}
		id := binary.BigEndian.Uint32(sig)
		if name != v.name || id != v.id || v.pub == nil {
			continue // unknown key: ignored, as the spec requires
		}
		if len(sig) != 4+ed25519.SignatureSize || !ed25519.Verify(v.pub, text, sig[4:]) {
			return nil, fmt.Errorf("%w: by key %s+%08x", ErrInvalidSignature, v.name, v.id)
		}
		verified = true
	}
	if !verified {
		return nil, fmt.Errorf("%w: no signature by %s+%08x", ErrUnknownKey, v.name, v.id)
	}
	return text, nil
}

// GenerateKey returns a new Ed25519 private key for signing checkpoints, drawing randomness
// from rnd (crypto/rand.Reader in production).
func GenerateKey(rnd io.Reader) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("audit: generating key: %w", err)
	}
	return key, nil
}

// pemPrivateKey is the PEM block type of a PKCS #8 private key.
const pemPrivateKey = "PRIVATE KEY"

// MarshalPrivateKey encodes key as a PEM "PRIVATE KEY" block (PKCS #8), for a key file
// (which the caller writes with mode 0600).
func MarshalPrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("audit: encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParsePrivateKey decodes a key written by MarshalPrivateKey: one PEM "PRIVATE KEY" block
// holding a PKCS #8 Ed25519 key, and nothing else but white space.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != pemPrivateKey {
		return nil, errors.New("audit: no PEM PRIVATE KEY block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("audit: data after the PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: parsing private key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: private key is %T, want Ed25519", k)
	}
	return key, nil
}
