package hl7v2

import (
	"bytes"
	"strconv"

	"github.com/vitalgate/vitalgate"
)

// Default limits.
const (
	DefaultMaxMessageBytes = 1 << 20
	DefaultMaxSegments     = 10000
	DefaultMaxFieldBytes   = 64 << 10
)

// Limits bound what Parse accepts. A zero field takes its default.
type Limits struct {
	MaxMessageBytes int // whole message, default DefaultMaxMessageBytes (1 MiB)
	MaxSegments     int // segments, default DefaultMaxSegments (10000)
	MaxFieldBytes   int // one field as encoded, default DefaultMaxFieldBytes (64 KiB)
}

func (l Limits) withDefaults() Limits {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.MaxSegments <= 0 {
		l.MaxSegments = DefaultMaxSegments
	}
	if l.MaxFieldBytes <= 0 {
		l.MaxFieldBytes = DefaultMaxFieldBytes
	}
	return l
}

func syntaxErr(code, cond string, loc Location, format string, args ...any) *Error {
	e := NewError(code, cond, loc, format, args...)
	e.Syntax = true
	return e
}

// Parse parses an ER7-encoded message (see the package documentation). Errors are *Error:
// ETOOLARGE when a limit is exceeded, EINVALID for malformed structure; all have Syntax set.
func Parse(data []byte, lim Limits) (*Message, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxMessageBytes {
		return nil, syntaxErr(vitalgate.ETOOLARGE, CondInternal, Location{}, "message is larger than %d bytes", lim.MaxMessageBytes)
	}
	if !bytes.HasPrefix(data, []byte("MSH")) || len(data) < 8 {
		return nil, syntaxErr(vitalgate.EINVALID, CondSegmentSequence, Location{Segment: "MSH", Seq: 1}, "message must start with an MSH segment")
	}
	d, err := delimiters(data)
	if err != nil {
		return nil, err
	}
	m := &Message{Delims: d}
	counts := map[string]int{}
	n := 0 // segments seen, including empty lines skipped? no: only real segments
	for len(data) > 0 {
		i := bytes.IndexAny(data, "\r\n")
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line, data = data[:i], data[i+1:]
		}
		if len(line) == 0 {
			continue
		}
		n++
		if n > lim.MaxSegments {
			return nil, syntaxErr(vitalgate.ETOOLARGE, CondInternal, Location{}, "message has more than %d segments", lim.MaxSegments)
		}
		seg, err := parseSegment(line, d, lim, n, counts)
		if err != nil {
			return nil, err
		}
		m.Segments = append(m.Segments, seg)
	}
	return m, nil
}

// delimiters reads MSH-1 and MSH-2.
func delimiters(data []byte) (Delimiters, error) {
	loc2 := Location{Segment: "MSH", Seq: 1, Field: 2}
	fs := data[3]
	if !isDelimiter(fs) {
		return Delimiters{}, syntaxErr(vitalgate.EINVALID, CondDataType, Location{Segment: "MSH", Seq: 1, Field: 1}, "field separator (MSH-1) must be a printable, non-alphanumeric character")
	}
	rest := data[4:]
	end := bytes.IndexAny(rest, string([]byte{fs, '\r', '\n'}))
	if end < 0 {
		end = len(rest)
	}
	enc := rest[:end]
	if len(enc) != 4 && len(enc) != 5 {
		return Delimiters{}, syntaxErr(vitalgate.EINVALID, CondDataType, loc2, "encoding characters (MSH-2) must be 4 or 5 characters")
	}
	seen := map[byte]bool{fs: true}
	for _, c := range enc {
		if !isDelimiter(c) || seen[c] {
			return Delimiters{}, syntaxErr(vitalgate.EINVALID, CondDataType, loc2, "encoding characters (MSH-2) must be distinct, printable, non-alphanumeric characters")
		}
		seen[c] = true
	}
	d := Delimiters{Field: fs, Component: enc[0], Repetition: enc[1], Escape: enc[2], Subcomponent: enc[3]}
	if len(enc) == 5 {
		d.Truncation = enc[4]
	}
	return d, nil
}

func isDelimiter(c byte) bool {
	return c > ' ' && c < 0x7f && !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z')
}

func validSegmentID(id []byte) bool {
	if len(id) != 3 || id[0] < 'A' || id[0] > 'Z' {
		return false
	}
	for _, c := range id[1:] {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// isHeader reports whether a segment id has the MSH layout (field 1 the separator, field
// 2 the encoding characters).
func isHeader(id string) bool { return id == "MSH" || id == "BHS" || id == "FHS" }

func parseSegment(line []byte, d Delimiters, lim Limits, n int, counts map[string]int) (Segment, error) {
	if len(line) < 3 || !validSegmentID(line[:3]) || (len(line) > 3 && line[3] != d.Field) {
		return Segment{}, syntaxErr(vitalgate.EINVALID, CondSegmentSequence, Location{}, "segment %d has no valid segment id", n)
	}
	id := string(line[:3])
	counts[id]++
	seq := counts[id]
	if n == 1 && id != "MSH" {
		return Segment{}, syntaxErr(vitalgate.EINVALID, CondSegmentSequence, Location{Segment: id, Seq: seq}, "message must start with an MSH segment")
	}
	seg := Segment{ID: id}
	if len(line) == 3 {
		return seg, nil
	}
	rest := line[4:]
	fieldNo := 1
	if isHeader(id) {
		// Field 1 is the separator, field 2 the encoding characters, kept raw.
		end := bytes.IndexByte(rest, d.Field)
		if end < 0 {
			end = len(rest)
		}
		if end > lim.MaxFieldBytes {
			return Segment{}, syntaxErr(vitalgate.ETOOLARGE, CondDataType, Location{Segment: id, Seq: seq, Field: 2}, "field is larger than %d bytes", lim.MaxFieldBytes)
		}
		seg.Fields = append(seg.Fields, Field{Rep{Comp{string(d.Field)}}}, rawField(string(rest[:end])))
		if end == len(rest) {
			return seg, nil
		}
		rest = rest[end+1:]
		fieldNo = 3
	}
	for {
		end := bytes.IndexByte(rest, d.Field)
		last := end < 0
		if last {
			end = len(rest)
		}
		if end > lim.MaxFieldBytes {
			return Segment{}, syntaxErr(vitalgate.ETOOLARGE, CondDataType, Location{Segment: id, Seq: seq, Field: fieldNo}, "field is larger than %d bytes", lim.MaxFieldBytes)
		}
		seg.Fields = append(seg.Fields, parseField(rest[:end], d))
		if last {
			break
		}
		rest = rest[end+1:]
		fieldNo++
	}
	return seg, nil
}

func rawField(s string) Field {
	if s == "" {
		return nil
	}
	return Field{Rep{Comp{s}}}
}

func parseField(b []byte, d Delimiters) Field {
	if len(b) == 0 {
		return nil
	}
	var f Field
	for _, rb := range split(b, d.Repetition) {
		if len(rb) == 0 {
			f = append(f, nil)
			continue
		}
		var r Rep
		for _, cb := range split(rb, d.Component) {
			if len(cb) == 0 {
				r = append(r, nil)
				continue
			}
			var c Comp
			for _, sb := range split(cb, d.Subcomponent) {
				c = append(c, unescape(sb, d))
			}
			r = append(r, c)
		}
		f = append(f, r)
	}
	return f
}

func split(b []byte, sep byte) [][]byte {
	if bytes.IndexByte(b, sep) < 0 {
		return [][]byte{b}
	}
	return bytes.Split(b, []byte{sep})
}

// unescape decodes the escape sequences of one value (see the package documentation).
func unescape(b []byte, d Delimiters) string {
	if bytes.IndexByte(b, d.Escape) < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		if c != d.Escape {
			out = append(out, c)
			i++
			continue
		}
		j := bytes.IndexByte(b[i+1:], d.Escape)
		if j < 0 { // lone escape character: keep the rest literally
			out = append(out, b[i:]...)
			break
		}
		seq := b[i+1 : i+1+j]
		next := i + 1 + j + 1
		if r, ok := unescapeSeq(seq, d); ok {
			out = append(out, r...)
		} else {
			out = append(out, b[i:next]...)
		}
		i = next
	}
	return string(out)
}

func unescapeSeq(seq []byte, d Delimiters) ([]byte, bool) {
	if len(seq) == 1 {
		switch seq[0] {
		case 'F':
			return []byte{d.Field}, true
		case 'S':
			return []byte{d.Component}, true
		case 'T':
			return []byte{d.Subcomponent}, true
		case 'R':
			return []byte{d.Repetition}, true
		case 'E':
			return []byte{d.Escape}, true
		case 'P':
			if d.Truncation != 0 {
				return []byte{d.Truncation}, true
			}
		}
		return nil, false
	}
	if len(seq) == 0 {
		return nil, false
	}
	if string(seq) == ".br" {
		return []byte{'\n'}, true
	}
	if seq[0] == 'X' && len(seq) > 1 && len(seq)%2 == 1 {
		out := make([]byte, 0, len(seq)/2)
		for k := 1; k < len(seq); k += 2 {
			v, err := strconv.ParseUint(string(seq[k:k+2]), 16, 8)
			if err != nil {
				return nil, false
			}
			out = append(out, byte(v))
		}
		return out, true
	}
	return nil, false
}
