package hl7v2

import (
	"time"

	"github.com/vitalgate/vitalgate"
)

// Precision is how much of an HL7 TS/DTM value was given.
type Precision int

// Precisions, coarsest first. PrecFraction1 to PrecFraction4 are seconds with 1 to 4
// fractional digits.
const (
	PrecYear Precision = iota + 1
	PrecMonth
	PrecDay
	PrecHour
	PrecMinute
	PrecSecond
	PrecFraction1
	PrecFraction2
	PrecFraction3
	PrecFraction4
)

// ParseTS parses an HL7 TS/DTM value YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]. Without
// an offset the time is in def (UTC if def is nil); with one, in a fixed zone of that
// offset. Missing parts are the start of the period (month 1, day 1, 00:00:00). It returns an
// EINVALID *vitalgate.Error (without Field; the caller names the element) for anything else.
func ParseTS(s string, def *time.Location) (time.Time, Precision, error) {
	bad := func() (time.Time, Precision, error) {
		return time.Time{}, 0, vitalgate.Errorf(vitalgate.EINVALID, "not a valid HL7 date/time (YYYY[MM[DD[HH[MM[SS[.SSSS]]]]]][+/-ZZZZ])")
	}
	loc := def
	if loc == nil {
		loc = time.UTC
	}
	// Offset.
	if i := indexAny(s, "+-"); i >= 0 {
		z := s[i+1:]
		if len(z) != 4 || !digits(z) {
			return bad()
		}
		hh, mm := atoi(z[:2]), atoi(z[2:])
		if hh > 14 || mm > 59 {
			return bad()
		}
		off := hh*3600 + mm*60
		if s[i] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
		s = s[:i]
	}
	frac := ""
	if i := indexAny(s, "."); i >= 0 {
		frac, s = s[i+1:], s[:i]
		if len(s) != 14 || len(frac) < 1 || len(frac) > 4 || !digits(frac) {
			return bad()
		}
	}
	if !digits(s) {
		return bad()
	}
	var p Precision
	switch len(s) {
	case 4:
		p = PrecYear
	case 6:
		p = PrecMonth
	case 8:
		p = PrecDay
	case 10:
		p = PrecHour
	case 12:
		p = PrecMinute
	case 14:
		p = PrecSecond + Precision(len(frac))
	default:
		return bad()
	}
	part := func(i, dflt int) int {
		if len(s) >= i+2 {
			return atoi(s[i : i+2])
		}
		return dflt
	}
	year := atoi(s[:4])
	month, day, hour, minute, sec := part(4, 1), part(6, 1), part(8, 0), part(10, 0), part(12, 0)
	nsec := 0
	if frac != "" {
		nsec = atoi(frac)
		for range 9 - len(frac) {
			nsec *= 10
		}
	}
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return bad()
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // e.g. 20230230
		return bad()
	}
	return t, p, nil
}

// FormatTS formats t as an HL7 DTM to the second with its offset: YYYYMMDDHHMMSS+ZZZZ.
func FormatTS(t time.Time) string { return t.Format("20060102150405-0700") }

func indexAny(s, chars string) int {
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(chars); j++ {
			if s[i] == chars[j] {
				return i
			}
		}
	}
	return -1
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}
