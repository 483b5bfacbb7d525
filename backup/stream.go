package backup

import (
	"bufio"
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The encrypted file: a header, then sealed chunks.
//
//	header  = "VGBACKUP1\n" || kem id (2) || kdf id (2) || aead id (2) || len(enc) (2) || enc
//	chunk   = len(ciphertext) (4) || ciphertext
//
// The header is the HPKE info (it binds the suite and the encapsulated key). Chunk i is
// sealed by the HPKE context's i-th Seal with associated data i (8 bytes) || final (1 byte):
// the context's nonce counter refuses reordered or repeated chunks, and the final flag of the
// last chunk refuses a truncated file. Every chunk but the last holds ChunkSize bytes.
const (
	magic = "VGBACKUP1\n"
	// ChunkSize is the plaintext size of a chunk.
	ChunkSize = 1 << 20
	maxEnc    = 1024
)

// ErrCorrupt means the file is not a backup, or was changed, truncated or encrypted to
// another recovery key.
var ErrCorrupt = errors.New("backup: the file is not a Vitalgate backup for this recovery key, or it was changed or truncated")

// sealer writes sealed chunks.
type sealer struct {
	w     io.Writer
	s     *hpke.Sender
	buf   []byte
	n     uint64
	err   error
	close bool
}

// newSealer writes the header to w and returns a writer that encrypts to pub.
func newSealer(w io.Writer, pub hpke.PublicKey) (*sealer, error) {
	_, kdf, aead := suite()
	ids := suiteIDs()
	enc, s, err := hpke.NewSender(pub, kdf, aead, infoOf(ids))
	if err != nil {
		return nil, fmt.Errorf("backup: encrypt: %w", err)
	}
	hdr := append([]byte(magic), ids...)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(enc))) // #nosec G115 -- enc is 65 bytes for P-256
	hdr = append(hdr, enc...)
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("backup: write: %w", err)
	}
	return &sealer{w: w, s: s, buf: make([]byte, 0, ChunkSize)}, nil
}

// suiteIDs is the suite's identifiers as the header holds them.
func suiteIDs() []byte {
	b := binary.BigEndian.AppendUint16(nil, KEMID)
	b = binary.BigEndian.AppendUint16(b, KDFID)
	return binary.BigEndian.AppendUint16(b, AEADID)
}

// infoOf is the HPKE info: a label and the suite (the encapsulated key is bound by HPKE).
func infoOf(ids []byte) []byte { return append([]byte("vitalgate backup v1\x00"), ids...) }

func aad(n uint64, final bool) []byte {
	b := binary.BigEndian.AppendUint64(nil, n)
	if final {
		return append(b, 1)
	}
	return append(b, 0)
}

func (s *sealer) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), ChunkSize-len(s.buf))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		if len(s.buf) == ChunkSize {
			if err := s.flush(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (s *sealer) flush(final bool) error {
	ct, err := s.s.Seal(aad(s.n, final), s.buf)
	if err != nil {
		s.err = fmt.Errorf("backup: encrypt: %w", err)
		return s.err
	}
	s.n++
	s.buf = s.buf[:0]
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(ct))) // #nosec G115 -- at most ChunkSize+16
	if _, err := s.w.Write(l[:]); err != nil {
		s.err = fmt.Errorf("backup: write: %w", err)
		return s.err
	}
	if _, err := s.w.Write(ct); err != nil {
		s.err = fmt.Errorf("backup: write: %w", err)
		return s.err
	}
	return nil
}

// Close seals the last chunk. It does not close the underlying writer.
func (s *sealer) Close() error {
	if s.close {
		return s.err
	}
	s.close = true
	if s.err != nil {
		return s.err
	}
	return s.flush(true)
}

// opener reads sealed chunks.
type opener struct {
	r     *bufio.Reader
	rc    *hpke.Recipient
	buf   []byte
	n     uint64
	final bool
	err   error
}

// newOpener reads the header from r and returns a reader of the plaintext.
func newOpener(r io.Reader, priv hpke.PrivateKey) (*opener, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	prefix := make([]byte, len(magic)+8)
	if _, err := io.ReadFull(br, prefix); err != nil || string(prefix[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: no backup header", ErrCorrupt)
	}
	ids := prefix[len(magic):]
	if binary.BigEndian.Uint16(ids) != KEMID || binary.BigEndian.Uint16(ids[2:]) != KDFID || binary.BigEndian.Uint16(ids[4:]) != AEADID {
		return nil, fmt.Errorf("%w: unknown encryption suite", ErrCorrupt)
	}
	encLen := int(binary.BigEndian.Uint16(ids[6:]))
	if encLen == 0 || encLen > maxEnc {
		return nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	enc := make([]byte, encLen)
	if _, err := io.ReadFull(br, enc); err != nil {
		return nil, fmt.Errorf("%w: short header", ErrCorrupt)
	}
	_, kdf, aead := suite()
	rc, err := hpke.NewRecipient(enc, priv, kdf, aead, infoOf(ids[:6]))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return &opener{r: br, rc: rc}, nil
}

func (o *opener) Read(p []byte) (int, error) {
	for len(o.buf) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.final {
			return 0, io.EOF
		}
		o.err = o.next()
	}
	n := copy(p, o.buf)
	o.buf = o.buf[n:]
	return n, nil
}

func (o *opener) next() error {
	var l [4]byte
	if _, err := io.ReadFull(o.r, l[:]); err != nil {
		return fmt.Errorf("%w: the file ends before its last chunk (truncated)", ErrCorrupt)
	}
	size := binary.BigEndian.Uint32(l[:])
	if size > ChunkSize+64 {
		return fmt.Errorf("%w: chunk %d too large", ErrCorrupt, o.n)
	}
	ct := make([]byte, size)
	if _, err := io.ReadFull(o.r, ct); err != nil {
		return fmt.Errorf("%w: the file ends inside chunk %d (truncated)", ErrCorrupt, o.n)
	}
	for _, final := range []bool{false, true} {
		pt, err := o.rc.Open(aad(o.n, final), ct)
		if err != nil {
			continue
		}
		o.n++
		o.buf, o.final = pt, final
		if final {
			if _, err := o.r.ReadByte(); err != io.EOF {
				return fmt.Errorf("%w: data after the last chunk", ErrCorrupt)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: chunk %d does not decrypt", ErrCorrupt, o.n)
}
