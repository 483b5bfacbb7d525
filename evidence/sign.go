package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vitalgate/vitalgate/audit"
)

// Key files of the report signer in the data dir.
const (
	SigningKeyFile = "evidence.key" // Ed25519 signing key (secret, 0600)
	PublicKeyFile  = "evidence.pub" // its public key: "vitalgate-evidence ed25519 KEYID BASE64"
)

// signContext separates report signatures from every other Ed25519 signature.
const signContext = "vitalgate evidence report v1\n"

// Signer signs reports.
type Signer struct {
	key ed25519.PrivateKey
	// KeyID names the key: the first 8 bytes of the SHA-256 of the public key, in hex.
	KeyID string
}

// PublicKey is a report verifier key.
type PublicKey struct {
	Key   ed25519.PublicKey
	KeyID string
}

func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// String is the public key file's line.
func (p PublicKey) String() string {
	return "vitalgate-evidence ed25519 " + p.KeyID + " " + base64.StdEncoding.EncodeToString(p.Key)
}

// ParsePublicKey reads a public key line written by PublicKey.String.
func ParsePublicKey(s string) (PublicKey, error) {
	f := strings.Fields(s)
	if len(f) != 4 || f[0] != "vitalgate-evidence" || f[1] != "ed25519" {
		return PublicKey{}, errors.New("not a vitalgate evidence public key (want: vitalgate-evidence ed25519 KEYID BASE64)")
	}
	raw, err := base64.StdEncoding.DecodeString(f[3])
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return PublicKey{}, errors.New("evidence public key: bad key bytes")
	}
	p := PublicKey{Key: ed25519.PublicKey(raw), KeyID: keyID(raw)}
	if p.KeyID != f[2] {
		return PublicKey{}, fmt.Errorf("evidence public key: key id %s does not match the key (%s)", f[2], p.KeyID)
	}
	return p, nil
}

// Public returns the signer's public key.
func (s *Signer) Public() PublicKey {
	pub := s.key.Public().(ed25519.PublicKey)
	return PublicKey{Key: pub, KeyID: s.KeyID}
}

// LoadOrCreateSigner loads DIR/evidence.key, creating it and DIR/evidence.pub on first use;
// created reports whether it did (the caller records that in the audit log).
func LoadOrCreateSigner(dir string) (s *Signer, created bool, err error) {
	path := filepath.Join(dir, SigningKeyFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		key, err := audit.GenerateKey(nil)
		if err != nil {
			return nil, false, err
		}
		pemKey, err := audit.MarshalPrivateKey(key)
		if err != nil {
			return nil, false, err
		}
		switch err := writeNew(path, pemKey, 0o600); {
		case err == nil:
			created = true
		case !errors.Is(err, fs.ErrExist): // another process won the race: use its key
			return nil, false, fmt.Errorf("write %s: %w", SigningKeyFile, err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("%s is readable by other users (mode %o): run `chmod 600 %s`", path, st.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path) // #nosec G304 -- the key file of the operator's data dir
	if err != nil {
		return nil, false, err
	}
	key, err := audit.ParsePrivateKey(data)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", SigningKeyFile, err)
	}
	s = &Signer{key: key, KeyID: keyID(key.Public().(ed25519.PublicKey))}
	pub := filepath.Join(dir, PublicKeyFile)
	if _, err := os.Stat(pub); errors.Is(err, fs.ErrNotExist) {
		if err := writeNew(pub, []byte(s.Public().String()+"\n"), 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, false, fmt.Errorf("write %s: %w", PublicKeyFile, err)
		}
	}
	return s, created, nil
}

// ReadPublicKey reads a public key file (evidence.pub).
func ReadPublicKey(path string) (PublicKey, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- the operator names the file
	if err != nil {
		return PublicKey{}, err
	}
	return ParsePublicKey(string(data))
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode) // #nosec G304 -- data dir path
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// Digest is the hex SHA-256 of a report's body (everything before its signature line).
func Digest(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// signatureLine returns the last line of a report of format: the signature in a form the
// format tolerates (an HTML comment, a JSON value of its own, a CSV row).
func signatureLine(format, sig string) string {
	switch format {
	case FormatJSON:
		b, _ := json.Marshal(map[string]string{"vitalgate_evidence_signature": sig})
		return string(b) + "\n"
	case FormatMDS2:
		return `"vitalgate-evidence-signature: ` + sig + `"` + "\n"
	}
	return "<!-- vitalgate-evidence-signature: " + sig + " -->\n"
}

// Sign appends the signature line to body and returns the signed file and the digest of
// its body. A body that does not end in a newline gets one first, so that the signature is
// always a line of its own.
func (s *Signer) Sign(body []byte, format string) (file []byte, digest string) {
	body = bytes.Clone(body)
	if len(body) > 0 && body[len(body)-1] != '\n' {
		body = append(body, '\n')
	}
	sig := ed25519.Sign(s.key, append([]byte(signContext), body...))
	line := signatureLine(format, "v1 ed25519 "+s.KeyID+" "+base64.StdEncoding.EncodeToString(sig))
	return append(body, line...), Digest(body)
}

var sigPattern = regexp.MustCompile(`vitalgate[-_]evidence[-_]signature"?:\s*"?v1 ed25519 ([0-9a-f]{16}) ([A-Za-z0-9+/=]+)`)

// ErrTampered is returned by Verify when a report's signature does not match its content.
var ErrTampered = errors.New("the report's signature does not verify: the file was changed after signing, or signed by another key")

// Verification of a report file.
type Checked struct {
	Digest string // hex SHA-256 of the body, as recorded in the audit log
	KeyID  string
}

// Verify checks a signed report against key and returns its digest.
func Verify(file []byte, key PublicKey) (Checked, error) {
	body, last := splitLast(file)
	m := sigPattern.FindSubmatch(last)
	if m == nil {
		return Checked{}, errors.New("no vitalgate evidence signature on the last line: not a signed report")
	}
	sigText := "v1 ed25519 " + string(m[1]) + " " + string(m[2])
	canonical := false
	for _, f := range []string{FormatHTML, FormatJSON, FormatMDS2} { // md shares the HTML comment
		canonical = canonical || string(last) == signatureLine(f, sigText)
	}
	if !canonical {
		return Checked{}, ErrTampered // the signature line itself was changed
	}
	if string(m[1]) != key.KeyID {
		return Checked{}, fmt.Errorf("signed by key %s, not by the given key %s", m[1], key.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(string(m[2]))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Checked{}, ErrTampered
	}
	if !ed25519.Verify(key.Key, append([]byte(signContext), body...), sig) {
		return Checked{}, ErrTampered
	}
	return Checked{Digest: Digest(body), KeyID: key.KeyID}, nil
}

// splitLast splits b before its last line (which ends in a newline).
func splitLast(b []byte) (body, last []byte) {
	t := bytes.TrimSuffix(b, []byte("\n"))
	i := bytes.LastIndexByte(t, '\n')
	return b[:i+1], b[i+1:]
}
