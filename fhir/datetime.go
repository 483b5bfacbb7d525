package fhir

import (
	"regexp"
	"time"
)

var (
	// FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or a full time with seconds and a zone.
	dateTimeRE = regexp.MustCompile(`^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00))?)?)?$`)
	idRE       = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
)

// precision of a parsed dateTime.
type precision int

const (
	precYear precision = iota
	precMonth
	precDay
	precTime
)

// parseDateTime parses a FHIR dateTime. A partial date is returned as its first instant in
// UTC.
func parseDateTime(s string) (time.Time, precision, bool) {
	if !dateTimeRE.MatchString(s) {
		return time.Time{}, 0, false
	}
	var layout string
	var p precision
	switch len(s) {
	case 4:
		layout, p = "2006", precYear
	case 7:
		layout, p = "2006-01", precMonth
	case 10:
		layout, p = "2006-01-02", precDay
	default:
		layout, p = time.RFC3339Nano, precTime
	}
	t, err := time.Parse(layout, s)
	if err != nil { // e.g. 2023-02-30
		return time.Time{}, 0, false
	}
	return t, p, true
}

// earliest returns the earliest instant a dateTime can denote: partial dates carry no zone,
// so they may start up to 14 hours before their UTC start.
func earliest(t time.Time, p precision) time.Time {
	if p == precTime {
		return t
	}
	return t.Add(-14 * time.Hour)
}

// ParseDateTime parses a FHIR dateTime or instant (YYYY, YYYY-MM, YYYY-MM-DD, or a time
// with seconds and a zone) and returns its first instant (a partial date in UTC). It
// reports false for anything else.
func ParseDateTime(s string) (time.Time, bool) {
	t, _, ok := parseDateTime(s)
	return t, ok
}
