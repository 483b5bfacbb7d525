package audit

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Checkpoint is a tree head: the log named Origin had Size entries whose Merkle tree root was
// Root (https://c2sp.org/tlog-checkpoint). It is comparable with ==.
type Checkpoint struct {
	Origin string         // the log's identity, e.g. "vitalgate.example/audit"
	Size   uint64         // number of entries covered
	Root   [HashSize]byte // RFC 6962 root hash of the first Size entries
}

// Marshal returns the checkpoint's note text: the origin, the decimal tree size and the
// base64 root hash, each on its own line ending in a newline. It is what SignCheckpoint signs.
func (c Checkpoint) Marshal() []byte {
	b := make([]byte, 0, len(c.Origin)+70)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Root[:])
	return append(b, '\n')
}

// String returns a short human-readable form, "origin@size:hexprefix", for messages.
func (c Checkpoint) String() string {
	return fmt.Sprintf("%s@%d:%x", c.Origin, c.Size, c.Root[:6])
}

// SignCheckpoint returns c as a signed note signed by s. The origin must be a valid key name
// (non-empty, no spaces, plus signs or control characters); by convention it equals the
// signer's name.
func SignCheckpoint(c Checkpoint, s *Signer) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("audit: no signer")
	}
	if err := checkKeyName(c.Origin); err != nil {
		return nil, fmt.Errorf("audit: checkpoint origin: %w", err)
	}
	return signNote(c.Marshal(), s), nil
}

// OpenCheckpoint checks that note is a well-formed checkpoint signed by v and returns it.
//
// Per the signed-note spec, signatures by other keys (witness cosignatures, a rotated key) are
// ignored; a signature by v's key that does not verify rejects the note (ErrInvalidSignature);
// a note without a signature by v's key name and key id is rejected (ErrUnknownKey). Per the
// checkpoint spec, extension lines after the root hash are accepted if non-empty (they are
// covered by the signature) and not returned. Other syntax faults give ErrMalformedNote. The
// errors are wrapped with details.
//
// OpenCheckpoint does not compare the origin with v's name or with an expected origin; callers
// that know the log's origin should check c.Origin.
func OpenCheckpoint(note []byte, v Verifier) (Checkpoint, error) {
	text, err := openNote(note, v)
	if err != nil {
		return Checkpoint{}, err
	}
	return parseCheckpoint(text)
}

// parseCheckpoint parses a checkpoint note text (ending in a newline).
func parseCheckpoint(text []byte) (Checkpoint, error) {
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint has fewer than three lines", ErrMalformedNote)
	}
	origin, sizeLine, rootLine := lines[0], lines[1], lines[2]
	if origin == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty checkpoint origin", ErrMalformedNote)
	}
	if sizeLine == "" || (sizeLine[0] == '0' && len(sizeLine) > 1) || sizeLine[0] == '+' {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint tree size %q not canonical decimal", ErrMalformedNote, sizeLine)
	}
	size, err := strconv.ParseUint(sizeLine, 10, 64)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint tree size %q", ErrMalformedNote, sizeLine)
	}
	root, err := base64.StdEncoding.Strict().DecodeString(rootLine)
	if err != nil || len(root) != HashSize {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint root hash %q is not base64 of %d bytes", ErrMalformedNote, rootLine, HashSize)
	}
	for _, ext := range lines[3:] {
		if ext == "" {
			return Checkpoint{}, fmt.Errorf("%w: empty checkpoint extension line", ErrMalformedNote)
		}
	}
	c := Checkpoint{Origin: origin, Size: size}
	copy(c.Root[:], root)
	return c, nil
}

// peekCheckpoint parses the text of a note without checking any signature. It is used only
// to describe a note that failed verification.
func peekCheckpoint(note []byte) *Checkpoint {
	i := bytes.LastIndex(note, []byte("\n\n"))
	if i < 0 {
		return nil
	}
	c, err := parseCheckpoint(note[:i+1])
	if err != nil {
		return nil
	}
	return &c
}
