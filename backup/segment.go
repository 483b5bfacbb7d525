package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/audit"
)

// An archive segment (`vitalgate audit archive`) is a file sealed like a backup (HPKE to the
// recovery key, in chunks; see stream.go) holding a tar stream of: the audit verifier key
// (audit.pub), the segment's description signed by the audit key (SEGMENT, a signed note
// whose first line is segmentHeader), the stored checkpoints the segment's entries lead to
// (checkpoints/N, one note each, the last at the segment's end), and the entries themselves
// (entries: each a 4-byte big-endian length and the entry's bytes). The description names the
// entries (From, To), the roots of the tree of the first From entries (so that the segment
// verifies on its own), the root at To, the SHA-256 of the entries stream, the archive's
// cutoff and the retention with the date until which the file must be kept.

// SegmentExt is the name ending of segment files; `audit verify --archive DIR` reads the files
// of DIR that end in it.
const SegmentExt = ".vgsegment"

const (
	segmentHeader  = "vitalgate-audit-segment v1"
	tarSegment     = "SEGMENT"
	tarCheckpoints = "checkpoints/"
	tarEntries     = "entries"
	maxEntry       = 1 << 20
)

// ErrSegment means a segment file is not one, was changed or truncated, is encrypted to
// another recovery key, or does not verify.
var ErrSegment = errors.New("archive segment refused")

// Segment describes an archive segment.
type Segment struct {
	ID     string
	Origin string
	// From and To: the segment holds entries From to To-1 of the log.
	From, To uint64
	// Prefix is the roots of the perfect subtrees of the tree of the first From entries
	// (audit.Tree.SubtreeRoots), Root the root of the first To entries.
	Prefix    [][audit.HashSize]byte
	Root      [audit.HashSize]byte
	Before    time.Time // the cutoff the archive was asked for: every entry is older
	LastTime  time.Time // the newest entry's time
	Retention Retention
	KeepUntil time.Time // LastTime plus Retention
	Created   time.Time
	// Checkpoints is the number of checkpoints the segment carries, Digest the hex SHA-256
	// of its entries stream.
	Checkpoints int
	Digest      string
}

// Marshal returns the description's text (what the audit key signs).
func (s Segment) Marshal() []byte {
	var b strings.Builder
	t := func(x time.Time) string { return x.UTC().Format(time.RFC3339Nano) }
	fmt.Fprintf(&b, "%s\nid %s\norigin %s\nentries %d %d\nroot %s\nprefix %d", segmentHeader, s.ID, s.Origin, s.From, s.To,
		base64.StdEncoding.EncodeToString(s.Root[:]), len(s.Prefix))
	for _, h := range s.Prefix {
		b.WriteString(" " + base64.StdEncoding.EncodeToString(h[:]))
	}
	fmt.Fprintf(&b, "\nbefore %s\nlast %s\nretention %s\nkeep-until %s\ncreated %s\ncheckpoints %d\ndigest %s\n",
		t(s.Before), t(s.LastTime), s.Retention, t(s.KeepUntil), t(s.Created), s.Checkpoints, s.Digest)
	return []byte(b.String())
}

// ParseSegment parses a segment description's text.
func ParseSegment(text []byte) (Segment, error) {
	var s Segment
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	if len(lines) == 0 || lines[0] != segmentHeader {
		return s, fmt.Errorf("segment description: first line is not %q", segmentHeader)
	}
	hash := func(v string) ([audit.HashSize]byte, error) {
		var h [audit.HashSize]byte
		b, err := base64.StdEncoding.Strict().DecodeString(v)
		if err == nil && len(b) != audit.HashSize {
			err = fmt.Errorf("a hash of %d bytes", len(b))
		}
		copy(h[:], b)
		return h, err
	}
	for _, l := range lines[1:] {
		key, rest, _ := strings.Cut(l, " ")
		var err error
		switch key {
		case "id":
			s.ID = rest
		case "origin":
			s.Origin = rest
		case "entries":
			f, t, _ := strings.Cut(rest, " ")
			if s.From, err = strconv.ParseUint(f, 10, 64); err == nil {
				s.To, err = strconv.ParseUint(t, 10, 64)
			}
		case "root":
			s.Root, err = hash(rest)
		case "prefix":
			count, roots, _ := strings.Cut(rest, " ")
			fields := strings.Fields(roots)
			var n int
			if n, err = strconv.Atoi(count); err == nil && (n != len(fields) || n > 64) {
				err = errors.New("wrong number of roots")
			}
			s.Prefix = nil
			for _, f := range fields {
				var h [audit.HashSize]byte
				if err != nil {
					break
				}
				h, err = hash(f)
				s.Prefix = append(s.Prefix, h)
			}
		case "before", "last", "keep-until", "created":
			var t time.Time
			t, err = time.Parse(time.RFC3339Nano, rest)
			switch key {
			case "before":
				s.Before = t
			case "last":
				s.LastTime = t
			case "keep-until":
				s.KeepUntil = t
			default:
				s.Created = t
			}
		case "retention":
			s.Retention, err = ParseRetention(rest)
		case "checkpoints":
			s.Checkpoints, err = strconv.Atoi(rest)
		case "digest":
			s.Digest = rest
		default:
			err = errors.New("unknown line")
		}
		if err != nil {
			return s, fmt.Errorf("segment description: bad line %q: %v", l, err)
		}
	}
	if s.ID == "" || s.Origin == "" || s.To <= s.From || s.Digest == "" || s.Checkpoints < 1 {
		return s, errors.New("segment description: id, origin, entries, checkpoints or digest missing")
	}
	return s, nil
}

// Retention is how long an archive segment must be kept after its newest entry: Years years
// and Days days (45 CFR 164.316(b)(2): six years, DefaultRetention).
type Retention struct{ Years, Days int }

// DefaultRetention is six years, what 45 CFR 164.316(b)(2)(i) asks of documentation.
var DefaultRetention = Retention{Years: 6}

// String returns the retention as ParseRetention reads it ("6y", "90d", "1y30d").
func (r Retention) String() string {
	var s string
	if r.Years > 0 {
		s = strconv.Itoa(r.Years) + "y"
	}
	if r.Days > 0 || s == "" {
		s += strconv.Itoa(r.Days) + "d"
	}
	return s
}

// Until returns t plus the retention.
func (r Retention) Until(t time.Time) time.Time { return t.AddDate(r.Years, 0, r.Days) }

// ParseRetention reads a retention: years and/or days, as "6y", "2190d" or "1y30d".
func ParseRetention(s string) (Retention, error) {
	var r Retention
	rest := s
	bad := fmt.Errorf("retention %q: give years and/or days, such as 6y, 2190d or 1y30d", s)
	if y, after, ok := strings.Cut(rest, "y"); ok {
		n, err := strconv.Atoi(y)
		if err != nil || n < 0 || n > 100 {
			return r, bad
		}
		r.Years, rest = n, after
	}
	if rest != "" {
		d, ok := strings.CutSuffix(rest, "d")
		n, err := strconv.Atoi(d)
		if !ok || err != nil || n < 0 || n > 36500 {
			return r, bad
		}
		r.Days = n
	}
	if r.Years == 0 && r.Days == 0 {
		return r, bad
	}
	return r, nil
}

// WriteSegment writes segment s, holding entries (entries s.From to s.To-1) and checkpoints
// (signed notes of sizes in (s.From, s.To], ascending, the last at s.To), to w, encrypted to
// pub, its description signed by signer. It fills in s.Checkpoints and s.Digest and returns s.
func WriteSegment(w io.Writer, pub hpke.PublicKey, signer *audit.Signer, s Segment, entries, checkpoints [][]byte) (Segment, error) {
	if uint64(len(entries)) != s.To-s.From || len(checkpoints) == 0 {
		return s, errors.New("archive segment: entries or checkpoints do not match its span")
	}
	var stream bytes.Buffer
	for _, e := range entries {
		stream.Write(binary.BigEndian.AppendUint32(nil, uint32(len(e)))) // #nosec G115 -- audit entries are small
		stream.Write(e)
	}
	sum := sha256.Sum256(stream.Bytes())
	s.Digest, s.Checkpoints = hex.EncodeToString(sum[:]), len(checkpoints)
	note, err := audit.SignNote(s.Marshal(), signer)
	if err != nil {
		return s, err
	}
	sw, err := newSealer(w, pub)
	if err != nil {
		return s, err
	}
	tw := tar.NewWriter(sw)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: s.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	err = put(tarVerifier, []byte(signer.Verifier().String()+"\n"))
	if err == nil {
		err = put(tarSegment, note)
	}
	for i, c := range checkpoints {
		if err == nil {
			err = put(fmt.Sprintf("%s%06d", tarCheckpoints, i+1), c)
		}
	}
	if err == nil {
		err = put(tarEntries, stream.Bytes())
	}
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return s, fmt.Errorf("write archive segment: %w", err)
	}
	return s, sw.Close()
}

// OpenedSegment is a segment file read and verified.
type OpenedSegment struct {
	Segment
	Note    []byte // the signed description
	Content audit.ArchivedSegment
}

// OpenSegment decrypts a segment file with priv and verifies it on its own: its description
// must be signed by v (the deployment's audit key), its entries must match the description's
// digest, and the tree of the first From entries (its prefix roots) extended with them must
// match every checkpoint it carries, the last at To with the description's root. Any fault is
// ErrSegment, with what failed.
func OpenSegment(ctx context.Context, r io.Reader, priv hpke.PrivateKey, v audit.Verifier) (*OpenedSegment, error) {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSegment, fmt.Sprintf(format, args...))
	}
	op, err := newOpener(r, priv)
	if err != nil {
		return nil, refuse("%v", err)
	}
	tr := tar.NewReader(op)
	read := func(want string, limit int64) (string, []byte, error) {
		h, err := tr.Next()
		if err != nil {
			return "", nil, refuse("the file ends early or is not a segment: %v", err)
		}
		if want != "" && h.Name != want && !strings.HasPrefix(h.Name, want) {
			return "", nil, refuse("found %q where %q was expected", h.Name, want)
		}
		if h.Size > limit {
			return "", nil, refuse("%s is too large", h.Name)
		}
		b, err := io.ReadAll(&ctxReader{ctx, tr})
		if err != nil {
			return "", nil, refuse("%v", err)
		}
		return h.Name, b, nil
	}
	_, vb, err := read(tarVerifier, 4096)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(vb)) != v.String() {
		return nil, refuse("it was signed by another audit key than %s: it is not a segment of this deployment's log", v.Name())
	}
	_, note, err := read(tarSegment, 1<<16)
	if err != nil {
		return nil, err
	}
	text, err := audit.OpenNote(note, v)
	if err != nil {
		return nil, refuse("its description does not verify with %s: %v", v.Name(), err)
	}
	s, err := ParseSegment(text)
	if err != nil {
		return nil, refuse("%v", err)
	}
	out := &OpenedSegment{Segment: s, Note: note, Content: audit.ArchivedSegment{ID: s.ID, From: s.From}}
	for range s.Checkpoints {
		_, c, err := read(tarCheckpoints, 1<<16)
		if err != nil {
			return nil, err
		}
		out.Content.Checkpoints = append(out.Content.Checkpoints, c)
	}
	n := s.To - s.From
	_, stream, err := read(tarEntries, int64(min(n, 1<<40))*(maxEntry+4))
	if err != nil {
		return nil, err
	}
	if _, err := tr.Next(); err != io.EOF {
		return nil, refuse("unexpected data after the entries")
	}
	if _, err := io.Copy(io.Discard, op); err != nil {
		return nil, refuse("%v", err)
	}
	if sum := sha256.Sum256(stream); hex.EncodeToString(sum[:]) != s.Digest {
		return nil, refuse("its entries do not match the digest in its signed description")
	}
	for rest := stream; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, refuse("the entries stream is cut short")
		}
		l := binary.BigEndian.Uint32(rest)
		if uint64(l) > uint64(len(rest)-4) || l == 0 { // #nosec G115 -- len(rest) >= 4 here, so len(rest)-4 is not negative
			return nil, refuse("the entries stream is cut short")
		}
		out.Content.Entries = append(out.Content.Entries, rest[4:4+l])
		rest = rest[4+l:]
	}
	if uint64(len(out.Content.Entries)) != n {
		return nil, refuse("it holds %d entries, its description %d", len(out.Content.Entries), n)
	}
	// The segment on its own: its entries, after the prefix, lead to its checkpoints.
	cps := map[uint64]audit.Checkpoint{}
	for _, c := range out.Content.Checkpoints {
		cp, err := audit.OpenCheckpoint(c, v)
		if err != nil || cp.Origin != s.Origin || cp.Size <= s.From || cp.Size > s.To {
			return nil, refuse("a checkpoint it carries does not verify or is outside its entries")
		}
		cps[cp.Size] = cp
	}
	if cp, ok := cps[s.To]; !ok || cp.Root != s.Root {
		return nil, refuse("it carries no checkpoint of its end (%d entries) with its root", s.To)
	}
	t, err := audit.NewTree(s.From, s.Prefix)
	if err != nil {
		return nil, refuse("%v", err)
	}
	for _, e := range out.Content.Entries {
		t.Append(audit.LeafHash(e))
		if cp, ok := cps[t.Size()]; ok && cp.Root != t.Root() {
			return nil, refuse("its entries do not lead to its checkpoint at %d entries", cp.Size)
		}
	}
	return out, nil
}
