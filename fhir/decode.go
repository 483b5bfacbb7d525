package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/vitalgate/vitalgate"
)

// Limits bounds what the decoder accepts. Zero fields mean the default.
type Limits struct {
	MaxDepth   int // deepest nesting of JSON objects and arrays (default 32)
	MaxEntries int // most entries in a Bundle, and observations in an HL7 message (default 1000)
	// MaxStringBytes is the longest string element, in bytes (default 8 KiB). The narrative
	// (text.div) is exempt: it has its own bound (CheckNarrative).
	MaxStringBytes int
}

// DefaultMaxStringBytes is the default bound of a string element (Limits.MaxStringBytes).
const DefaultMaxStringBytes = 8 << 10

// DefaultLimits returns the default limits: depth 32, 1000 Bundle entries, strings of at
// most 8 KiB.
func DefaultLimits() Limits {
	return Limits{MaxDepth: 32, MaxEntries: 1000, MaxStringBytes: DefaultMaxStringBytes}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxStringBytes <= 0 {
		l.MaxStringBytes = d.MaxStringBytes
	}
	return l
}

// DecodeObservation strictly decodes an Observation in FHIR R4 JSON with the default limits.
// It returns an EINVALID *vitalgate.Error naming the element for malformed input (see the
// package documentation) and ETOOLARGE for nesting beyond the depth limit. It does not
// validate content: call ValidateObservation.
func DecodeObservation(data []byte) (*Observation, error) {
	return DecodeObservationWith(data, DefaultLimits())
}

// DecodeObservationWith is DecodeObservation with the limits lim (zero fields: defaults);
// a string element longer than lim.MaxStringBytes is EUNPROCESSABLE naming the element.
func DecodeObservationWith(data []byte, lim Limits) (*Observation, error) {
	if err := checkStrict(data, "Observation", lim.withDefaults()); err != nil {
		return nil, err
	}
	var o Observation
	if err := json.Unmarshal(data, &o); err != nil {
		// The strict pass accepted it, so this is a bug, not bad input.
		return nil, vitalgate.Internal(err, "fhir: decode observation after strict pass")
	}
	return &o, nil
}

// DecodeBundle strictly decodes a Bundle of type batch or transaction whose entries each
// hold an Observation (decoded as strictly as DecodeObservation, with errors naming e.g.
// "Bundle.entry[3].resource.code") and a request {method POST, url "Observation"}.
// Malformed input is EINVALID; more entries than lim.MaxEntries or nesting beyond
// lim.MaxDepth is ETOOLARGE; an unsupported Bundle type, a missing resource or request, or a
// duplicate fullUrl is EUNPROCESSABLE. Observations are not validated: call ValidateEntry.
func DecodeBundle(data []byte, lim Limits) (*Bundle, error) {
	lim = lim.withDefaults()
	if err := checkStrict(data, "Bundle", lim); err != nil {
		return nil, err
	}
	var b Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, vitalgate.Internal(err, "fhir: decode bundle after strict pass")
	}
	switch b.Type {
	case "batch", "transaction":
	case "":
		return nil, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, "Bundle.type", "Bundle type is required")
	default:
		return nil, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, "Bundle.type", "Bundle type must be batch or transaction")
	}
	fullURLs := map[string]bool{}
	for i, e := range b.Entry {
		p := "Bundle.entry[" + strconv.Itoa(i) + "]"
		if e.FullURL != "" {
			if !uuidURN.MatchString(e.FullURL) && !absoluteURL.MatchString(e.FullURL) {
				return nil, vitalgate.FieldErrorf(vitalgate.EINVALID, p+".fullUrl", "fullUrl must be urn:uuid: followed by a UUID, or an absolute http(s) URL")
			}
			if fullURLs[e.FullURL] {
				return nil, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, p+".fullUrl", "fullUrl appears in more than one entry")
			}
			fullURLs[e.FullURL] = true
		}
		if e.Resource == nil {
			return nil, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, p+".resource", "each entry needs a resource")
		}
		if e.Request == nil {
			return nil, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, p+".request", "each entry of a %s needs a request", b.Type)
		}
		if e.Request.Method != "POST" {
			return nil, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, p+".request.method", "only POST is supported")
		}
		if e.Request.URL != "Observation" {
			return nil, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, p+".request.url", "request url must be Observation")
		}
	}
	return &b, nil
}

// DecodeResourceType returns the resourceType of the JSON object in data without decoding
// the rest, so that a transport can choose the decoder. It returns EINVALID if data is not a
// JSON object or has no well-formed resourceType.
func DecodeResourceType(data []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return "", vitalgate.Errorf(vitalgate.EINVALID, "the body must be a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", syntaxError(err, "")
		}
		if key, _ := tok.(string); key == "resourceType" {
			tok, err := dec.Token()
			if err != nil {
				return "", syntaxError(err, "resourceType")
			}
			rt, _ := tok.(string)
			if !resourceTypeName.MatchString(rt) {
				return "", vitalgate.FieldErrorf(vitalgate.EINVALID, "resourceType", "resourceType must be the name of a FHIR resource")
			}
			return rt, nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", syntaxError(err, "")
		}
	}
	return "", vitalgate.FieldErrorf(vitalgate.EINVALID, "resourceType", "resourceType is missing")
}

var (
	resourceTypeName = regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)
	uuidURN          = regexp.MustCompile(`^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	absoluteURL      = regexp.MustCompile(`^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9\-._~/%]*)?$`)
)

// checkStrict walks data's token stream against schema[root] and returns the first problem.
func checkStrict(data []byte, root string, lim Limits) error {
	w := &walker{dec: json.NewDecoder(bytes.NewReader(data)), lim: lim, root: root, steps: make([]step, 0, 16)}
	w.dec.UseNumber()
	tok, err := w.dec.Token()
	if err != nil {
		return syntaxError(err, root)
	}
	if tok != json.Delim('{') {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, root, "the body must be a JSON object")
	}
	if err := w.object(root, 1); err != nil {
		return err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return vitalgate.Errorf(vitalgate.EINVALID, "unexpected data after the JSON object")
	}
	return nil
}

// walker is the strict pass over one document. Where it is ("Observation.code.coding[0]")
// is a stack of steps, written out only when an error names it: the walk builds no strings.
type walker struct {
	dec   *json.Decoder
	lim   Limits
	root  string // the resource type
	steps []step
}

// step is one step of the path below the root: an element name as sent (written through
// safeName), or an array index.
type step struct {
	key    string
	index  int
	isItem bool
}

func (w *walker) push(s step) { w.steps = append(w.steps, s) }
func (w *walker) pop()        { w.steps = w.steps[:len(w.steps)-1] }

// path writes out where the walk is, as error messages name elements.
func (w *walker) path() string {
	var b strings.Builder
	b.WriteString(w.root)
	for _, s := range w.steps {
		if s.isItem {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		} else {
			b.WriteString("." + safeName(s.key))
		}
	}
	return b.String()
}

// inNarrativeDiv reports whether the walk is at a text.div element (exempt from the string
// bound).
func (w *walker) inNarrativeDiv() bool {
	n := len(w.steps)
	return n >= 2 && !w.steps[n-1].isItem && w.steps[n-1].key == "div" && !w.steps[n-2].isItem && w.steps[n-2].key == "text"
}

// safeName returns key if it looks like an element name, so that it can appear in a Field
// and a message without echoing arbitrary input.
func safeName(key string) string {
	if isElementName(key) {
		return key
	}
	return "(invalid name)"
}

// isElementName reports whether key matches ^[A-Za-z_][A-Za-z0-9_]{0,63}$.
func isElementName(key string) bool {
	if len(key) == 0 || len(key) > 64 {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// object walks the members of an object of datatype typ whose '{' has been read.
func (w *walker) object(typ string, depth int) error {
	if depth > w.lim.MaxDepth {
		return vitalgate.FieldErrorf(vitalgate.ETOOLARGE, w.path(), "JSON nesting is deeper than %d levels", w.lim.MaxDepth)
	}
	ct := compiled[typ]
	var seen, choices uint64 // bits of the elements and the choice groups met so far
	n := 0
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return syntaxError(err, w.path())
		}
		key, ok := tok.(string)
		if !ok {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "invalid JSON object key")
		}
		n++
		w.push(step{key: key})
		e, ok := ct.elems[key]
		switch {
		case ok:
		case strings.HasPrefix(key, "_"):
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "primitive extensions (%s) are not supported", safeName(key))
		case key == "extension" || key == "modifierExtension":
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "extensions are not supported")
		case key == "resourceType":
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "resourceType is not allowed here")
		default:
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "unknown element %s in %s", safeName(key), typ)
		}
		// An element that is not in the schema fails above at its first appearance, so only
		// known elements can repeat.
		if seen&e.bit != 0 {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "element %s appears more than once", safeName(key))
		}
		seen |= e.bit
		if e.choice != "" {
			if choices&e.choiceBit != 0 {
				return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "only one %s[x] element is allowed", e.choice)
			}
			choices |= e.choiceBit
		}
		if key == "resourceType" {
			tok, err := w.dec.Token()
			if err != nil {
				return syntaxError(err, w.path())
			}
			if s, _ := tok.(string); s != typ {
				return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "resourceType must be %s", typ)
			}
			w.pop()
			continue
		}
		if err := w.value(e.elem, depth); err != nil {
			return err
		}
		w.pop()
	}
	if _, err := w.dec.Token(); err != nil { // the closing '}'
		return syntaxError(err, w.path())
	}
	if n == 0 {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "empty objects are not allowed")
	}
	if resourceTypes[typ] && seen&ct.resourceType == 0 {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path()+".resourceType", "resourceType is missing")
	}
	return nil
}

// value walks the value of element e at path; depth is that of the enclosing object.
func (w *walker) value(e elem, depth int) error {
	tok, err := w.dec.Token()
	if err != nil {
		return syntaxError(err, w.path())
	}
	if !e.array {
		return w.single(e, tok, depth)
	}
	if tok != json.Delim('[') {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "must be a JSON array")
	}
	if depth+1 > w.lim.MaxDepth {
		return vitalgate.FieldErrorf(vitalgate.ETOOLARGE, w.path(), "JSON nesting is deeper than %d levels", w.lim.MaxDepth)
	}
	i := 0
	for ; w.dec.More(); i++ {
		if e.typ == "BundleEntry" && i >= w.lim.MaxEntries {
			return vitalgate.FieldErrorf(vitalgate.ETOOLARGE, w.path(), "a Bundle may hold at most %d entries", w.lim.MaxEntries)
		}
		tok, err := w.dec.Token()
		if err != nil {
			return syntaxError(err, w.path())
		}
		w.push(step{index: i, isItem: true})
		if err := w.single(e, tok, depth+1); err != nil {
			return err
		}
		w.pop()
	}
	if _, err := w.dec.Token(); err != nil { // the closing ']'
		return syntaxError(err, w.path())
	}
	if i == 0 {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "empty arrays are not allowed")
	}
	return nil
}

// single checks one non-array value whose first token is tok.
func (w *walker) single(e elem, tok json.Token, depth int) error {
	if tok == nil {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "null is not allowed")
	}
	switch e.kind {
	case kString:
		s, ok := tok.(string)
		if !ok {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "must be a JSON string")
		}
		if s == "" {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "empty strings are not allowed")
		}
		if hasCtl(s) {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "control characters are not allowed")
		}
		if w.lim.MaxStringBytes > 0 && len(s) > w.lim.MaxStringBytes && !w.inNarrativeDiv() {
			return vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, w.path(), "this element may hold at most %d bytes", w.lim.MaxStringBytes)
		}
	case kDecimal:
		n, ok := tok.(json.Number)
		if !ok {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "must be a JSON number")
		}
		if f, err := strconv.ParseFloat(string(n), 64); (err != nil && !errors.Is(err, strconv.ErrRange)) || math.IsInf(f, 0) || len(n) > 64 {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "number is out of range")
		}
	case kInteger:
		n, ok := tok.(json.Number)
		if !ok {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "must be a JSON number")
		}
		if _, err := strconv.ParseInt(string(n), 10, 32); err != nil {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "must be a whole number between -2147483648 and 2147483647")
		}
	case kBool:
		if _, ok := tok.(bool); !ok {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "must be true or false")
		}
	case kObject:
		if tok != json.Delim('{') {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, w.path(), "must be a JSON object")
		}
		return w.object(e.typ, depth+1)
	}
	return nil
}

// hasCtl reports whether s holds a control character other than tab, CR and LF (bytes
// below 0x20 are never part of a longer UTF-8 sequence).
func hasCtl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\r' && c != '\n' {
			return true
		}
	}
	return false
}

// syntaxError converts a json.Decoder error to a user-safe EINVALID error.
func syntaxError(err error, path string) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "invalid JSON at byte offset %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "unexpected end of JSON input")
	}
	return &vitalgate.Error{Code: vitalgate.EINVALID, Field: path, Message: "invalid JSON", Err: err}
}
