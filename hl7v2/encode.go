package hl7v2

import (
	"bytes"
	"strings"
)

// Encode writes m in ER7 with m.Delims (DefaultDelimiters if m.Delims.Field is 0), escaping
// every value and ending every segment with CR. Fields 1 and 2 of the first segment, when it
// is MSH, are written from the delimiters; fields 1 and 2 of other MSH, BHS and FHS segments
// are written as stored when that is safe. Values are escaped so that Parse gives them back
// unchanged: separators and the escape character as \F\ \S\ \T\ \R\ \E\, CR as \X0D\ and LF
// as \.br\.
func Encode(m *Message) []byte {
	if m == nil {
		return nil
	}
	d := m.Delims
	if d.Field == 0 {
		d = DefaultDelimiters
	}
	var b bytes.Buffer
	for i, s := range m.Segments {
		b.WriteString(s.ID)
		fields := s.Fields
		if isHeader(s.ID) {
			enc := d.EncodingCharacters()
			if i > 0 && len(s.Fields) >= 2 {
				if raw := s.Fields[1].Value(); !strings.ContainsAny(raw, string([]byte{d.Field, '\r', '\n'})) {
					enc = raw
				}
			}
			if i == 0 || len(s.Fields) >= 1 {
				b.WriteByte(d.Field)
				if i == 0 || len(s.Fields) >= 2 {
					b.WriteString(enc)
				}
			}
			if len(fields) >= 2 {
				fields = fields[2:]
			} else {
				fields = nil
			}
		}
		for _, f := range fields {
			b.WriteByte(d.Field)
			encodeField(&b, f, d)
		}
		b.WriteByte('\r')
	}
	return b.Bytes()
}

func encodeField(b *bytes.Buffer, f Field, d Delimiters) {
	for i, r := range f {
		if i > 0 {
			b.WriteByte(d.Repetition)
		}
		for j, c := range r {
			if j > 0 {
				b.WriteByte(d.Component)
			}
			for k, s := range c {
				if k > 0 {
					b.WriteByte(d.Subcomponent)
				}
				escape(b, s, d)
			}
		}
	}
}

// Escape returns s escaped for use as one value with the delimiters d.
func Escape(s string, d Delimiters) string {
	var b bytes.Buffer
	escape(&b, s, d)
	return b.String()
}

func escape(b *bytes.Buffer, s string, d Delimiters) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case d.Field:
			b.WriteByte(d.Escape)
			b.WriteByte('F')
			b.WriteByte(d.Escape)
		case d.Component:
			b.WriteByte(d.Escape)
			b.WriteByte('S')
			b.WriteByte(d.Escape)
		case d.Subcomponent:
			b.WriteByte(d.Escape)
			b.WriteByte('T')
			b.WriteByte(d.Escape)
		case d.Repetition:
			b.WriteByte(d.Escape)
			b.WriteByte('R')
			b.WriteByte(d.Escape)
		case d.Escape:
			b.WriteByte(d.Escape)
			b.WriteByte('E')
			b.WriteByte(d.Escape)
		case '\r':
			b.WriteByte(d.Escape)
			b.WriteString("X0D")
			b.WriteByte(d.Escape)
		case '\n':
			b.WriteByte(d.Escape)
			b.WriteString(".br")
			b.WriteByte(d.Escape)
		default:
			b.WriteByte(c)
		}
	}
}
