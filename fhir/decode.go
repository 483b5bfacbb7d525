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
	elementName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	uuidURN          = regexp.MustCompile(`^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	absoluteURL      = regexp.MustCompile(`^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9\-._~/%]*)?$`)
)

// checkStrict walks data's token stream against schema[root] and returns the first problem.
func checkStrict(data []byte, root string, lim Limits) error {
	w := &walker{dec: json.NewDecoder(bytes.NewReader(data)), lim: lim}
	w.dec.UseNumber()
	tok, err := w.dec.Token()
	if err != nil {
		return syntaxError(err, root)
	}
	if tok != json.Delim('{') {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, root, "the body must be a JSON object")
	}
	if err := w.object(root, root, 1); err != nil {
		return err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return vitalgate.Errorf(vitalgate.EINVALID, "unexpected data after the JSON object")
	}
	return nil
}

type walker struct {
	dec *json.Decoder
	lim Limits
}

// safeName returns key if it looks like an element name, so that it can appear in a Field
// and a message without echoing arbitrary input.
func safeName(key string) string {
	if elementName.MatchString(key) {
		return key
	}
	return "(invalid name)"
}

// object walks the members of an object of datatype typ whose '{' has been read.
func (w *walker) object(path, typ string, depth int) error {
	if depth > w.lim.MaxDepth {
		return vitalgate.FieldErrorf(vitalgate.ETOOLARGE, path, "JSON nesting is deeper than %d levels", w.lim.MaxDepth)
	}
	elems := schema[typ]
	seen := map[string]bool{}
	choices := map[string]bool{}
	n := 0
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return syntaxError(err, path)
		}
		key, ok := tok.(string)
		if !ok {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "invalid JSON object key")
		}
		n++
		field := path + "." + safeName(key)
		if seen[key] {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, field, "element %s appears more than once", safeName(key))
		}
		seen[key] = true
		e, ok := elems[key]
		switch {
		case ok:
		case strings.HasPrefix(key, "_"):
			return vitalgate.FieldErrorf(vitalgate.EINVALID, field, "primitive extensions (%s) are not supported", safeName(key))
		case key == "extension" || key == "modifierExtension":
			return vitalgate.FieldErrorf(vitalgate.EINVALID, field, "extensions are not supported")
		case key == "resourceType":
			return vitalgate.FieldErrorf(vitalgate.EINVALID, field, "resourceType is not allowed here")
		default:
			return vitalgate.FieldErrorf(vitalgate.EINVALID, field, "unknown element %s in %s", safeName(key), typ)
		}
		if e.choice != "" {
			if choices[e.choice] {
				return vitalgate.FieldErrorf(vitalgate.EINVALID, field, "only one %s[x] element is allowed", e.choice)
			}
			choices[e.choice] = true
		}
		if key == "resourceType" {
			tok, err := w.dec.Token()
			if err != nil {
				return syntaxError(err, field)
			}
			if s, _ := tok.(string); s != typ {
				return vitalgate.FieldErrorf(vitalgate.EINVALID, field, "resourceType must be %s", typ)
			}
			continue
		}
		if err := w.value(field, e, depth); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // the closing '}'
		return syntaxError(err, path)
	}
	if n == 0 {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "empty objects are not allowed")
	}
	if resourceTypes[typ] && !seen["resourceType"] {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, path+".resourceType", "resourceType is missing")
	}
	return nil
}

// value walks the value of element e at path; depth is that of the enclosing object.
func (w *walker) value(path string, e elem, depth int) error {
	tok, err := w.dec.Token()
	if err != nil {
		return syntaxError(err, path)
	}
	if !e.array {
		return w.single(path, e, tok, depth)
	}
	if tok != json.Delim('[') {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "must be a JSON array")
	}
	if depth+1 > w.lim.MaxDepth {
		return vitalgate.FieldErrorf(vitalgate.ETOOLARGE, path, "JSON nesting is deeper than %d levels", w.lim.MaxDepth)
	}
	i := 0
	for ; w.dec.More(); i++ {
		if e.typ == "BundleEntry" && i >= w.lim.MaxEntries {
			return vitalgate.FieldErrorf(vitalgate.ETOOLARGE, path, "a Bundle may hold at most %d entries", w.lim.MaxEntries)
		}
		tok, err := w.dec.Token()
		if err != nil {
			return syntaxError(err, path)
		}
		if err := w.single(path+"["+strconv.Itoa(i)+"]", e, tok, depth+1); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // the closing ']'
		return syntaxError(err, path)
	}
	if i == 0 {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "empty arrays are not allowed")
	}
	return nil
}

// single checks one non-array value whose first token is tok.
func (w *walker) single(path string, e elem, tok json.Token, depth int) error {
	if tok == nil {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "null is not allowed")
	}
	switch e.kind {
	case kString:
		s, ok := tok.(string)
		if !ok {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "must be a JSON string")
		}
		if s == "" {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "empty strings are not allowed")
		}
		if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\r' && r != '\n' }) >= 0 {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "control characters are not allowed")
		}
		if w.lim.MaxStringBytes > 0 && len(s) > w.lim.MaxStringBytes && !strings.HasSuffix(path, ".text.div") {
			return vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, path, "this element may hold at most %d bytes", w.lim.MaxStringBytes)
		}
	case kDecimal:
		n, ok := tok.(json.Number)
		if !ok {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "must be a JSON number")
		}
		if f, err := strconv.ParseFloat(string(n), 64); (err != nil && !errors.Is(err, strconv.ErrRange)) || math.IsInf(f, 0) || len(n) > 64 {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "number is out of range")
		}
	case kInteger:
		n, ok := tok.(json.Number)
		if !ok {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "must be a JSON number")
		}
		if _, err := strconv.ParseInt(string(n), 10, 32); err != nil {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "must be a whole number between -2147483648 and 2147483647")
		}
	case kBool:
		if _, ok := tok.(bool); !ok {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "must be true or false")
		}
	case kObject:
		if tok != json.Delim('{') {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, path, "must be a JSON object")
		}
		return w.object(path, e.typ, depth+1)
	}
	return nil
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
