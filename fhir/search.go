package fhir

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
)

// Search limits.
const (
	DefaultSearchCount = 50  // page size when _count is absent
	MaxSearchCount     = 100 // larger _count values are capped to this
	MaxSearchCodes     = 10  // most comma-separated values of code
	MaxSearchDates     = 10  // most date parameters in one search
	MaxSearchValue     = 256 // longest parameter value in bytes (except _cursor)
	MaxCursorLength    = 512 // longest _cursor in bytes
)

// ObservationSearch is a parsed GET /fhir/Observation search.
type ObservationSearch struct {
	// PatientID is the id of the Patient whose Observations are searched (required).
	PatientID string
	// Codes are the codes asked for, any of which matches (code=a,b means a OR b): each
	// "system|code" or a bare "code" (any system), with FHIR search escapes resolved. The
	// system never contains '|' and a bare code never does, so each is unambiguous.
	Codes []string
	// From and To bound the effective time as the half-open range [From, To); a zero time
	// is open. Both are in UTC. If From is not before To (both set), nothing matches.
	From, To time.Time
	// Count is the page size, 1 to MaxSearchCount.
	Count int
	// Desc is true for newest first (_sort=-date, the default), false for oldest first.
	Desc bool
	// Cursor is the opaque _cursor of the page to return, as given ("" for the first page).
	Cursor string
	// Category is the observation category asked for: "" (any) or CategoryLaboratory.
	Category string
}

// CategoryLaboratory is the observation category (and search value) of laboratory results.
const CategoryLaboratory = "laboratory"

// observationCategorySystem is the FHIR observation-category code system.
const observationCategorySystem = "http://terminology.hl7.org/CodeSystem/observation-category"

// CategoryToken returns the search token of the resources of category that carry token
// ("system|code", a bare code, or "" for every resource of the category): stores index it
// beside the code itself, so that category and code are searched as one blind index. The
// NUL bytes keep it apart from every code.
func CategoryToken(category, token string) string {
	return "\x00category\x00" + category + "\x00" + token
}

// Includes reports whether an effective time t is in [s.From, s.To).
func (s ObservationSearch) Includes(t time.Time) bool {
	return (s.From.IsZero() || !t.Before(s.From)) && (s.To.IsZero() || t.Before(s.To))
}

// PatientSearch is a parsed GET /fhir/Patient search: by one identifier, system and value.
type PatientSearch struct {
	System string // identifier system, an absolute URI without '|'
	Value  string // identifier value, with FHIR search escapes resolved
	Count  int    // page size, 1 to MaxSearchCount
	Cursor string // opaque _cursor as given, "" for the first page
}

// Key returns IdentifierKey(s.System, s.Value): the string whose blind index to look up.
func (s PatientSearch) Key() string { return IdentifierKey(s.System, s.Value) }

// ParseObservationSearch parses the query of an Observation search. It supports:
//
//   - patient (required, once): a Patient id or "Patient/<id>".
//   - code (at most once): "system|code" or a bare "code"; up to MaxSearchCodes
//     comma-separated values, any of which matches. Empty systems or codes ("|code",
//     "system|") are not supported.
//   - date (repeatable, up to MaxSearchDates times, all of which must hold): an optional
//     prefix eq (the default), ge, gt, le or lt, then a FHIR date or dateTime of any precision:
//     YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]] with Z or ±hh:mm (a '+' decoded
//     to a space by form decoding is accepted). Dates without a time are taken in UTC. The
//     value denotes the range [start, end) of its precision; eq gives [start, end), ge
//     [start, ∞), gt [end, ∞), le (−∞, end), lt (−∞, start), and the ranges are intersected
//     into From and To. Comma-separated (OR) dates are not supported.
//   - _count (once): 1 or more, default DefaultSearchCount, capped at MaxSearchCount.
//   - _sort (once): date or -date (default).
//   - _cursor (once): opaque printable ASCII, at most MaxCursorLength bytes.
//
// Anything else, including modifiers (code:text), _format and other result parameters, is
// rejected (FHIR strict handling), as are empty values, values longer than MaxSearchValue
// bytes and repeated single-valued parameters. Errors are EINVALID *vitalgate.Error with
// Field set to the parameter's name (for example "date").
//
// It also takes category (once): laboratory, or
// http://terminology.hl7.org/CodeSystem/observation-category|laboratory, the only category
// indexed for search.
func ParseObservationSearch(q url.Values) (ObservationSearch, error) {
	return parseClinicalSearch(q, true)
}

// ParseDiagnosticReportSearch parses the query of a DiagnosticReport search: patient
// (required), code, date, _count, _sort and _cursor exactly as ParseObservationSearch
// (code is the report's code, OBR-4; date its effective time).
func ParseDiagnosticReportSearch(q url.Values) (ObservationSearch, error) {
	return parseClinicalSearch(q, false)
}

func parseClinicalSearch(q url.Values, category bool) (ObservationSearch, error) {
	s := ObservationSearch{Count: DefaultSearchCount, Desc: true}
	allowed := map[string]int{
		"patient": 1, "code": 1, "date": MaxSearchDates, "_count": 1, "_sort": 1, "_cursor": 1,
	}
	if category {
		allowed["category"] = 1
	}
	err := checkParams(q, allowed)
	if err != nil {
		return ObservationSearch{}, err
	}
	if v, ok := q["category"]; ok {
		switch v[0] {
		case CategoryLaboratory, observationCategorySystem + "|" + CategoryLaboratory:
			s.Category = CategoryLaboratory
		default:
			return ObservationSearch{}, invalidParam("category", "category must be laboratory (the only category this server searches); leave it out to search every Observation")
		}
	}
	pv, ok := q["patient"]
	if !ok {
		return ObservationSearch{}, invalidParam("patient", "the patient parameter is required")
	}
	id := strings.TrimPrefix(pv[0], "Patient/")
	if !idRE.MatchString(id) {
		return ObservationSearch{}, invalidParam("patient", "patient must be a Patient id (1 to 64 letters, digits, '-' or '.'), optionally after Patient/")
	}
	s.PatientID = id
	if v, ok := q["code"]; ok {
		if s.Codes, err = parseCodes(v[0]); err != nil {
			return ObservationSearch{}, err
		}
	}
	for _, v := range q["date"] {
		lo, hi, err := parseDateParam(v)
		if err != nil {
			return ObservationSearch{}, err
		}
		if !lo.IsZero() && (s.From.IsZero() || lo.After(s.From)) {
			s.From = lo
		}
		if !hi.IsZero() && (s.To.IsZero() || hi.Before(s.To)) {
			s.To = hi
		}
	}
	if v, ok := q["_sort"]; ok {
		switch v[0] {
		case "date":
			s.Desc = false
		case "-date":
			s.Desc = true
		default:
			return ObservationSearch{}, invalidParam("_sort", "_sort must be date or -date")
		}
	}
	if s.Count, s.Cursor, err = parsePaging(q); err != nil {
		return ObservationSearch{}, err
	}
	return s, nil
}

// ParsePatientSearch parses the query of a Patient search. It supports identifier
// (required, once): "system|value" with both parts non-empty, the system an absolute URI,
// FHIR search escapes (\| \, \$ \\) allowed in the value, one value only (no commas); and
// _count and _cursor as ParseObservationSearch does. Errors are as for
// ParseObservationSearch.
func ParsePatientSearch(q url.Values) (PatientSearch, error) {
	if err := checkParams(q, map[string]int{"identifier": 1, "_count": 1, "_cursor": 1}); err != nil {
		return PatientSearch{}, err
	}
	v, ok := q["identifier"]
	if !ok {
		return PatientSearch{}, invalidParam("identifier", "the identifier parameter is required")
	}
	if len(splitEscaped(v[0], ',')) > 1 {
		return PatientSearch{}, invalidParam("identifier", "identifier takes one value (escape a comma in it as \\,)")
	}
	parts := splitEscaped(v[0], '|')
	if len(parts) != 2 {
		return PatientSearch{}, invalidParam("identifier", "identifier must be system|value (escape a '|' in the value as \\|)")
	}
	sys, ok1 := unescapeSearch(parts[0])
	val, ok2 := unescapeSearch(parts[1])
	switch {
	case !ok1 || !ok2:
		return PatientSearch{}, invalidParam("identifier", "identifier has an invalid escape: only \\| \\, \\$ and \\\\ are allowed")
	case sys == "" || val == "":
		return PatientSearch{}, invalidParam("identifier", "identifier must be system|value with both parts given")
	case !identifierSystem.MatchString(sys):
		return PatientSearch{}, invalidParam("identifier", "the identifier system must be an absolute URI without spaces or '|'")
	case hasControl(val):
		return PatientSearch{}, invalidParam("identifier", "control characters are not allowed")
	}
	s := PatientSearch{System: sys, Value: val}
	var err error
	if s.Count, s.Cursor, err = parsePaging(q); err != nil {
		return PatientSearch{}, err
	}
	return s, nil
}

func invalidParam(name, format string, args ...any) error {
	return vitalgate.FieldErrorf(vitalgate.EINVALID, name, format, args...)
}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_:.\-]{0,63}$`)

// safeParam returns name if it looks like a search parameter name, so that it can appear in
// a Field and a message without echoing arbitrary input.
func safeParam(name string) string {
	if paramName.MatchString(name) {
		return name
	}
	return "(invalid name)"
}

// checkParams checks every parameter of q, in name order, against allowed (name → most
// occurrences) and the value limits.
func checkParams(q url.Values, allowed map[string]int) error {
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		vals := q[name]
		most, ok := allowed[name]
		switch {
		case !ok && name == "_format":
			return invalidParam(name, "_format is not supported: the only format is application/fhir+json")
		case !ok:
			sn := safeParam(name)
			return invalidParam(sn, "unknown search parameter %s", sn)
		case len(vals) > most && most == 1:
			return invalidParam(name, "parameter %s may appear only once", name)
		case len(vals) > most:
			return invalidParam(name, "parameter %s may appear at most %d times", name, most)
		}
		limit := MaxSearchValue
		if name == "_cursor" {
			limit = MaxCursorLength
		}
		for _, v := range vals {
			if v == "" {
				return invalidParam(name, "parameter %s needs a value", name)
			}
			if len(v) > limit {
				return invalidParam(name, "the value of %s is longer than %d bytes", name, limit)
			}
		}
	}
	return nil
}

// parsePaging parses _count and _cursor.
func parsePaging(q url.Values) (count int, cursor string, err error) {
	count = DefaultSearchCount
	if v, ok := q["_count"]; ok {
		digits := strings.TrimLeft(v[0], "0")
		if strings.Trim(v[0], "0123456789") != "" || digits == "" {
			return 0, "", invalidParam("_count", "_count must be a whole number of 1 or more")
		}
		if len(digits) > 3 {
			count = MaxSearchCount
		} else {
			count, _ = strconv.Atoi(digits)
			count = min(count, MaxSearchCount)
		}
	}
	if v, ok := q["_cursor"]; ok {
		if strings.IndexFunc(v[0], func(r rune) bool { return r <= 0x20 || r >= 0x7f }) >= 0 {
			return 0, "", invalidParam("_cursor", "_cursor is not valid")
		}
		cursor = v[0]
	}
	return count, cursor, nil
}

var (
	searchSystem = regexp.MustCompile(`^[^\s|]+$`)
	searchCode   = regexp.MustCompile(`^[^\s|]+( [^\s|]+)*$`)
	codeInSystem = regexp.MustCompile(`^\S+( \S+)*$`)
)

// parseCodes parses the value of code: comma-separated system|code or bare codes.
func parseCodes(v string) ([]string, error) {
	toks := splitEscaped(v, ',')
	if len(toks) > MaxSearchCodes {
		return nil, invalidParam("code", "code takes at most %d comma-separated values", MaxSearchCodes)
	}
	out := make([]string, 0, len(toks))
	for _, tok := range toks {
		parts := splitEscaped(tok, '|')
		if len(parts) > 2 {
			return nil, invalidParam("code", "each code must be system|code or code (escape a '|' as \\|)")
		}
		un := make([]string, len(parts))
		for i, p := range parts {
			s, ok := unescapeSearch(p)
			if !ok {
				return nil, invalidParam("code", "code has an invalid escape: only \\| \\, \\$ and \\\\ are allowed")
			}
			un[i] = s
		}
		if len(un) == 1 {
			if !searchCode.MatchString(un[0]) {
				return nil, invalidParam("code", "each code must be system|code or a code without spaces at either end or '|'")
			}
			out = append(out, un[0])
			continue
		}
		if un[0] == "" || un[1] == "" {
			return nil, invalidParam("code", "each code must be system|code with both parts given, or a bare code")
		}
		if !searchSystem.MatchString(un[0]) || !codeInSystem.MatchString(un[1]) {
			return nil, invalidParam("code", "each code must be system|code: a system without spaces and a code without spaces at either end")
		}
		out = append(out, un[0]+"|"+un[1])
	}
	return out, nil
}

// splitEscaped splits s at each sep not escaped by a backslash, keeping escapes.
func splitEscaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // skip the escaped byte
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unescapeSearch resolves the FHIR search escapes \\ \, \$ and \| and reports false for any
// other backslash.
func unescapeSearch(s string) (string, bool) {
	if !strings.Contains(s, `\`) {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			if i+1 >= len(s) || !strings.ContainsRune(`\,$|`, rune(s[i+1])) {
				return "", false
			}
			i++
			c = s[i]
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// searchDate matches a date search value after its prefix: year, month, day, then
// optionally hh:mm, :ss, .fraction and a zone (Z, +hh:mm or -hh:mm; a space stands for a '+'
// that form decoding turned into a space).
var searchDate = regexp.MustCompile(`^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.([0-9]{1,9}))?)?(Z|[+\- ](0[0-9]|1[0-3]):[0-5][0-9]|[+\- ]14:00))?)?)?$`)

// parseDateParam parses one date value and returns its lower and upper bounds (zero when
// open).
func parseDateParam(v string) (lo, hi time.Time, err error) {
	prefix := "eq"
	if len(v) >= 2 && v[0] >= 'a' && v[0] <= 'z' && v[1] >= 'a' && v[1] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	switch prefix {
	case "eq", "ge", "gt", "le", "lt":
	case "ne", "sa", "eb", "ap":
		return lo, hi, invalidParam("date", "date prefix %s is not supported (use eq, ge, gt, le or lt)", prefix)
	default:
		return lo, hi, invalidParam("date", "date must be an optional prefix (eq, ge, gt, le, lt) and a FHIR date or dateTime")
	}
	if strings.Contains(v, ",") {
		return lo, hi, invalidParam("date", "comma-separated dates are not supported: repeat the date parameter instead")
	}
	m := searchDate.FindStringSubmatch(v)
	if m == nil {
		return lo, hi, invalidParam("date", "date must be YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]] with Z or a ±hh:mm offset")
	}
	var start, end time.Time
	switch len(v) {
	case 4, 7, 10:
		layout := "2006-01-02"[:len(v)]
		start, err = time.Parse(layout, v)
		switch len(v) {
		case 4:
			end = start.AddDate(1, 0, 0)
		case 7:
			end = start.AddDate(0, 1, 0)
		default:
			end = start.AddDate(0, 0, 1)
		}
	default:
		s := v
		if i := len(s) - 6; s[i] == ' ' { // a '+' form-decoded to a space
			s = s[:i] + "+" + s[i+1:]
		}
		// The time part is T + hh:mm (6 bytes); seconds are present if a ':' follows.
		unit := time.Minute
		if s[16] == ':' {
			unit = time.Second
			if frac := m[9]; frac != "" {
				unit = time.Duration(pow10(9 - len(frac)))
			}
		} else {
			s = s[:16] + ":00" + s[16:]
		}
		start, err = time.Parse(time.RFC3339Nano, s)
		end = start.Add(unit)
	}
	if err != nil { // e.g. 2023-02-30
		return lo, hi, invalidParam("date", "date is not a valid calendar date")
	}
	start, end = start.UTC(), end.UTC()
	switch prefix {
	case "eq":
		return start, end, nil
	case "ge":
		return start, hi, nil
	case "gt":
		return end, hi, nil
	case "le":
		return lo, end, nil
	default: // lt
		return lo, start, nil
	}
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}
