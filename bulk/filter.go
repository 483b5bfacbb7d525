package bulk

import (
	"net/url"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
)

// MaxTypeFilters bounds the _typeFilter values of one request.
const MaxTypeFilters = 16

// ParseTypeFilters parses _typeFilter values: "Observation?" followed by search parameters
// code (a token, system|code or a bare code; several values separated by commas), category
// (a code, e.g. vital-signs or laboratory) and date (with prefix ge, gt, le, lt or eq and a
// FHIR date or dateTime; at most one lower and one upper bound). Only Observation can be
// filtered. EINVALID, in words for the client, for anything else.
func ParseTypeFilters(values []string) ([]vitalgate.ExportFilter, error) {
	if len(values) > MaxTypeFilters {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "at most %d _typeFilter values are accepted", MaxTypeFilters)
	}
	var out []vitalgate.ExportFilter
	for _, v := range values {
		fs, err := parseTypeFilter(v)
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
	}
	return out, nil
}

func parseTypeFilter(v string) ([]vitalgate.ExportFilter, error) {
	typ, query, ok := strings.Cut(v, "?")
	if !ok || typ == "" || query == "" {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "a _typeFilter is a resource type and a query, such as Observation?code=http://loinc.org|8867-4")
	}
	if typ != "Observation" {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "_typeFilter on %s is not supported; only Observation (code, category, date) can be filtered", typ)
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the _typeFilter query cannot be parsed: %v", err)
	}
	base := vitalgate.ExportFilter{Type: typ}
	var codes []string
	for name, vals := range params {
		switch name {
		case "code":
			for _, val := range vals {
				for c := range strings.SplitSeq(val, ",") {
					if c == "" || strings.Count(c, "|") > 1 {
						return nil, vitalgate.Errorf(vitalgate.EINVALID, "a _typeFilter code is system|code or a code")
					}
					codes = append(codes, c)
				}
			}
		case "category":
			if len(vals) != 1 || vals[0] == "" || strings.Contains(vals[0], ",") {
				return nil, vitalgate.Errorf(vitalgate.EINVALID, "a _typeFilter takes one category")
			}
			c := vals[0]
			if _, code, ok := strings.Cut(c, "|"); ok {
				c = code
			}
			base.Category = c
		case "date":
			for _, val := range vals {
				if err := dateBound(&base, val); err != nil {
					return nil, err
				}
			}
		default:
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "_typeFilter parameter %q is not supported; Observation filters take code, category and date", name)
		}
	}
	if len(codes) == 0 {
		return []vitalgate.ExportFilter{base}, nil
	}
	out := make([]vitalgate.ExportFilter, len(codes))
	for i, c := range codes {
		out[i] = base
		out[i].Code = c
	}
	return out, nil
}

// dateBound applies a date parameter to f's bounds.
func dateBound(f *vitalgate.ExportFilter, v string) error {
	prefix, rest := "eq", v
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, rest = v[:2], v[2:]
	}
	from, to, err := dateRange(rest)
	if err != nil {
		return err
	}
	lower := func(t time.Time) error {
		if !f.From.IsZero() {
			return vitalgate.Errorf(vitalgate.EINVALID, "a _typeFilter takes one lower date bound")
		}
		f.From = t
		return nil
	}
	upper := func(t time.Time) error {
		if !f.To.IsZero() {
			return vitalgate.Errorf(vitalgate.EINVALID, "a _typeFilter takes one upper date bound")
		}
		f.To = t
		return nil
	}
	switch prefix {
	case "ge":
		return lower(from)
	case "gt":
		return lower(to)
	case "lt":
		return upper(from)
	case "le":
		return upper(to)
	case "eq":
		if err := lower(from); err != nil {
			return err
		}
		return upper(to)
	}
	return vitalgate.Errorf(vitalgate.EINVALID, "date prefix %q is not supported; use ge, gt, le, lt or eq", prefix)
}

// dateRange returns the instants [from, to) a FHIR date or dateTime value covers: a day, a
// month or a year for a date, the second (or given precision) for a dateTime.
func dateRange(v string) (from, to time.Time, err error) {
	for _, l := range []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{time.RFC3339Nano, func(t time.Time) time.Time { return t.Add(time.Nanosecond) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
	} {
		if t, perr := time.Parse(l.layout, v); perr == nil {
			if l.layout == time.RFC3339Nano && !strings.Contains(v, ".") {
				return t.UTC(), t.Add(time.Second).UTC(), nil
			}
			return t.UTC(), l.next(t).UTC(), nil
		}
	}
	return time.Time{}, time.Time{}, vitalgate.Errorf(vitalgate.EINVALID, "date %q is not a FHIR date (2026-11-27) or dateTime (2026-11-27T10:00:00Z)", v)
}

// keeps reports whether the filters of r's type keep r (no filter of its type: kept).
// code is whether r carries a code (by its blind index); category whether its body names a
// category, asked only when a filter needs it.
func keeps(fs []vitalgate.ExportFilter, typ string, effective time.Time, hasCode func(string) bool, hasCategory func(string) bool) bool {
	typed := false
	for _, f := range fs {
		if f.Type != typ {
			continue
		}
		typed = true
		if !f.From.IsZero() && effective.Before(f.From) || !f.To.IsZero() && !effective.Before(f.To) {
			continue
		}
		if f.Code != "" && !hasCode(f.Code) {
			continue
		}
		if f.Category != "" && !hasCategory(f.Category) {
			continue
		}
		return true
	}
	return !typed
}
