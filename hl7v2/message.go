package hl7v2

// Delimiters are a message's separators and escape character, from MSH-1 and MSH-2.
type Delimiters struct {
	Field        byte // MSH-1, usually '|'
	Component    byte // usually '^'
	Repetition   byte // usually '~'
	Escape       byte // usually '\'
	Subcomponent byte // usually '&'
	// Truncation is the v2.7 truncation character ('#'), or 0 when MSH-2 has only four
	// characters. It is not a separator: it is kept in values and \P\ unescapes to it.
	Truncation byte
}

// DefaultDelimiters are the usual |^~\& delimiters, without a truncation character.
var DefaultDelimiters = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// EncodingCharacters returns MSH-2 for d: component, repetition, escape and subcomponent
// separators, then the truncation character if any.
func (d Delimiters) EncodingCharacters() string {
	b := []byte{d.Component, d.Repetition, d.Escape, d.Subcomponent}
	if d.Truncation != 0 {
		b = append(b, d.Truncation)
	}
	return string(b)
}

// Message is a parsed HL7 v2 message.
type Message struct {
	Segments []Segment
	Delims   Delimiters
}

// Segment is one segment: a three-character id and its fields, Fields[0] being field 1.
type Segment struct {
	ID     string
	Fields []Field
}

// Field is one field: its repetitions. A nil Field is empty.
type Field []Rep

// Rep is one repetition of a field: its components. A nil Rep is empty.
type Rep []Comp

// Comp is one component: its subcomponents, unescaped. A nil Comp is empty.
type Comp []string

// Segment returns the first segment with the given id, or nil. The accessors of a nil
// *Segment return empty values, so chains like m.Segment("PID").Field(3) are safe.
func (m *Message) Segment(id string) *Segment {
	if m == nil {
		return nil
	}
	for i := range m.Segments {
		if m.Segments[i].ID == id {
			return &m.Segments[i]
		}
	}
	return nil
}

// All returns the segments with the given id, in message order. The n-th element (from 0)
// is occurrence n+1, the Seq of its Location.
func (m *Message) All(id string) []*Segment {
	if m == nil {
		return nil
	}
	var out []*Segment
	for i := range m.Segments {
		if m.Segments[i].ID == id {
			out = append(out, &m.Segments[i])
		}
	}
	return out
}

// Field returns field n (1-based, HL7 numbering), or nil if absent.
func (s *Segment) Field(n int) Field {
	if s == nil || n < 1 || n > len(s.Fields) {
		return nil
	}
	return s.Fields[n-1]
}

// NumFields returns the number of fields present (the highest field number).
func (s *Segment) NumFields() int {
	if s == nil {
		return 0
	}
	return len(s.Fields)
}

// Rep returns repetition i (1-based), or nil if absent.
func (f Field) Rep(i int) Rep {
	if i < 1 || i > len(f) {
		return nil
	}
	return f[i-1]
}

// Value returns the first subcomponent of the first component of the first repetition.
func (f Field) Value() string { return f.Rep(1).Comp(1).Sub(1) }

// IsEmpty reports whether the field has no non-empty value at all.
func (f Field) IsEmpty() bool {
	for _, r := range f {
		if !r.IsEmpty() {
			return false
		}
	}
	return true
}

// Comp returns component j (1-based), or nil if absent.
func (r Rep) Comp(j int) Comp {
	if j < 1 || j > len(r) {
		return nil
	}
	return r[j-1]
}

// Value returns the first subcomponent of the first component.
func (r Rep) Value() string { return r.Comp(1).Sub(1) }

// IsEmpty reports whether the repetition has no non-empty value.
func (r Rep) IsEmpty() bool {
	for _, c := range r {
		for _, s := range c {
			if s != "" {
				return false
			}
		}
	}
	return true
}

// Sub returns subcomponent k (1-based), or "" if absent.
func (c Comp) Sub(k int) string {
	if k < 1 || k > len(c) {
		return ""
	}
	return c[k-1]
}

// Value returns the first subcomponent.
func (c Comp) Value() string { return c.Sub(1) }
