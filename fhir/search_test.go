package fhir_test

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

func utc(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
	return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
}

func TestParseObservationSearch(t *testing.T) {
	def := func(mod func(*fhir.ObservationSearch)) fhir.ObservationSearch {
		s := fhir.ObservationSearch{PatientID: "p1", Count: 50, Desc: true}
		if mod != nil {
			mod(&s)
		}
		return s
	}
	long := strings.Repeat("a", 257)
	tests := []struct {
		name  string
		query string
		want  fhir.ObservationSearch
		field string // error field; "" for no error
	}{
		{"patient id", "patient=p1", def(nil), ""},
		{"patient reference", "patient=Patient/p1", def(nil), ""},
		{"code with system", "patient=p1&code=http://loinc.org|8867-4", def(func(s *fhir.ObservationSearch) { s.Codes = []string{"http://loinc.org|8867-4"} }), ""},
		{"bare code", "patient=p1&code=8867-4", def(func(s *fhir.ObservationSearch) { s.Codes = []string{"8867-4"} }), ""},
		{"codes or", "patient=p1&code=http://loinc.org|8867-4,urn:iso:std:iso:11073:10101|147842,9279-1",
			def(func(s *fhir.ObservationSearch) {
				s.Codes = []string{"http://loinc.org|8867-4", "urn:iso:std:iso:11073:10101|147842", "9279-1"}
			}), ""},
		{"code escapes", `patient=p1&code=http://x.example|a\,b\|c\\d\$`, def(func(s *fhir.ObservationSearch) { s.Codes = []string{`http://x.example|a,b|c\d$`} }), ""},
		{"ten codes", "patient=p1&code=a,b,c,d,e,f,g,h,i,j", def(func(s *fhir.ObservationSearch) {
			s.Codes = strings.Split("a,b,c,d,e,f,g,h,i,j", ",")
		}), ""},
		{"date year", "patient=p1&date=2025", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2025, 1, 1, 0, 0, 0, 0), utc(2026, 1, 1, 0, 0, 0, 0)
		}), ""},
		{"date eq month", "patient=p1&date=eq2024-02", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2024, 2, 1, 0, 0, 0, 0), utc(2024, 3, 1, 0, 0, 0, 0)
		}), ""},
		{"date day", "patient=p1&date=2024-02-29", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2024, 2, 29, 0, 0, 0, 0), utc(2024, 3, 1, 0, 0, 0, 0)
		}), ""},
		{"date minute zulu", "patient=p1&date=2025-12-31T10:00Z", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2025, 12, 31, 10, 0, 0, 0), utc(2025, 12, 31, 10, 1, 0, 0)
		}), ""},
		{"date second offset", "patient=p1&date=2025-12-31T10:00:05%2B01:00", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2025, 12, 31, 9, 0, 5, 0), utc(2025, 12, 31, 9, 0, 6, 0)
		}), ""},
		{"date plus decoded as space", "patient=p1&date=2025-12-31T10:00:05+01:00", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2025, 12, 31, 9, 0, 5, 0), utc(2025, 12, 31, 9, 0, 6, 0)
		}), ""},
		{"date negative offset", "patient=p1&date=2025-12-31T10:00-05:30", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2025, 12, 31, 15, 30, 0, 0), utc(2025, 12, 31, 15, 31, 0, 0)
		}), ""},
		{"date millis", "patient=p1&date=2025-12-31T10:00:05.120Z", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2025, 12, 31, 10, 0, 5, 120e6), utc(2025, 12, 31, 10, 0, 5, 121e6)
		}), ""},
		{"date one fraction digit", "patient=p1&date=2025-12-31T10:00:05.1Z", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2025, 12, 31, 10, 0, 5, 100e6), utc(2025, 12, 31, 10, 0, 5, 200e6)
		}), ""},
		{"date ge", "patient=p1&date=ge2025-12", def(func(s *fhir.ObservationSearch) { s.From = utc(2025, 12, 1, 0, 0, 0, 0) }), ""},
		{"date gt", "patient=p1&date=gt2025-12", def(func(s *fhir.ObservationSearch) { s.From = utc(2026, 1, 1, 0, 0, 0, 0) }), ""},
		{"date le", "patient=p1&date=le2025-12-30", def(func(s *fhir.ObservationSearch) { s.To = utc(2025, 12, 31, 0, 0, 0, 0) }), ""},
		{"date lt", "patient=p1&date=lt2025-12-30", def(func(s *fhir.ObservationSearch) { s.To = utc(2025, 12, 30, 0, 0, 0, 0) }), ""},
		{"date range", "patient=p1&date=ge2025-01-01&date=lt2025-02-01", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2025, 1, 1, 0, 0, 0, 0), utc(2025, 2, 1, 0, 0, 0, 0)
		}), ""},
		{"date intersection", "patient=p1&date=2025&date=ge2025-06&date=le2025-07-04&date=lt2025-12",
			def(func(s *fhir.ObservationSearch) {
				s.From, s.To = utc(2025, 6, 1, 0, 0, 0, 0), utc(2025, 7, 5, 0, 0, 0, 0)
			}), ""},
		{"date disjoint", "patient=p1&date=2024&date=2025", def(func(s *fhir.ObservationSearch) {
			s.From, s.To = utc(2025, 1, 1, 0, 0, 0, 0), utc(2025, 1, 1, 0, 0, 0, 0)
		}), ""},
		{"count", "patient=p1&_count=10", def(func(s *fhir.ObservationSearch) { s.Count = 10 }), ""},
		{"count leading zeros", "patient=p1&_count=007", def(func(s *fhir.ObservationSearch) { s.Count = 7 }), ""},
		{"count capped", "patient=p1&_count=101", def(func(s *fhir.ObservationSearch) { s.Count = 100 }), ""},
		{"count huge capped", "patient=p1&_count=99999999999999999999999", def(func(s *fhir.ObservationSearch) { s.Count = 100 }), ""},
		{"sort ascending", "patient=p1&_sort=date", def(func(s *fhir.ObservationSearch) { s.Desc = false }), ""},
		{"sort descending", "patient=p1&_sort=-date", def(nil), ""},
		{"cursor", "patient=p1&_cursor=eyJhIjoxfQ.c2ln-_~", def(func(s *fhir.ObservationSearch) { s.Cursor = "eyJhIjoxfQ.c2ln-_~" }), ""},
		{"cursor 512", "patient=p1&_cursor=" + strings.Repeat("c", 512), def(func(s *fhir.ObservationSearch) { s.Cursor = strings.Repeat("c", 512) }), ""},

		{"no patient", "code=8867-4", fhir.ObservationSearch{}, "patient"},
		{"empty query", "", fhir.ObservationSearch{}, "patient"},
		{"empty patient", "patient=", fhir.ObservationSearch{}, "patient"},
		{"patient twice", "patient=p1&patient=p2", fhir.ObservationSearch{}, "patient"},
		{"patient absolute url", "patient=http://evil.example/Patient/p1", fhir.ObservationSearch{}, "patient"},
		{"patient other type", "patient=Device/d1", fhir.ObservationSearch{}, "patient"},
		{"patient bad id", "patient=a%20b", fhir.ObservationSearch{}, "patient"},
		{"patient too long", "patient=" + long, fhir.ObservationSearch{}, "patient"},
		{"subject unsupported", "patient=p1&subject=Patient/p1", fhir.ObservationSearch{}, "subject"},
		{"modifier unsupported", "patient=p1&code:text=pulse", fhir.ObservationSearch{}, "code:text"},
		{"format rejected", "patient=p1&_format=xml", fhir.ObservationSearch{}, "_format"},
		{"summary rejected", "patient=p1&_summary=count", fhir.ObservationSearch{}, "_summary"},
		{"markup name not echoed", "patient=p1&%3Cscript%3E=1", fhir.ObservationSearch{}, "(invalid name)"},
		{"code twice", "patient=p1&code=a&code=b", fhir.ObservationSearch{}, "code"},
		{"eleven codes", "patient=p1&code=a,b,c,d,e,f,g,h,i,j,k", fhir.ObservationSearch{}, "code"},
		{"code empty system", "patient=p1&code=|8867-4", fhir.ObservationSearch{}, "code"},
		{"code empty code", "patient=p1&code=http://loinc.org|", fhir.ObservationSearch{}, "code"},
		{"code empty in list", "patient=p1&code=a,,b", fhir.ObservationSearch{}, "code"},
		{"code two bars", "patient=p1&code=a|b|c", fhir.ObservationSearch{}, "code"},
		{"code bad escape", `patient=p1&code=a\b`, fhir.ObservationSearch{}, "code"},
		{"code trailing backslash", `patient=p1&code=ab\`, fhir.ObservationSearch{}, "code"},
		{"bare code with escaped bar", `patient=p1&code=a\|b`, fhir.ObservationSearch{}, "code"},
		{"code with space in system", "patient=p1&code=http://loinc .org|x", fhir.ObservationSearch{}, "code"},
		{"code too long", "patient=p1&code=" + long, fhir.ObservationSearch{}, "code"},
		{"date empty", "patient=p1&date=", fhir.ObservationSearch{}, "date"},
		{"date prefix ne", "patient=p1&date=ne2025", fhir.ObservationSearch{}, "date"},
		{"date prefix ap", "patient=p1&date=ap2025", fhir.ObservationSearch{}, "date"},
		{"date prefix unknown", "patient=p1&date=xx2025", fhir.ObservationSearch{}, "date"},
		{"date prefix only", "patient=p1&date=ge", fhir.ObservationSearch{}, "date"},
		{"date upper prefix", "patient=p1&date=GE2025", fhir.ObservationSearch{}, "date"},
		{"date or", "patient=p1&date=2024,2025", fhir.ObservationSearch{}, "date"},
		{"date no zone", "patient=p1&date=2025-12-31T10:00", fhir.ObservationSearch{}, "date"},
		{"date hour only", "patient=p1&date=2025-12-31T10Z", fhir.ObservationSearch{}, "date"},
		{"date impossible", "patient=p1&date=2025-02-29", fhir.ObservationSearch{}, "date"},
		{"date bad month", "patient=p1&date=2025-13", fhir.ObservationSearch{}, "date"},
		{"date two digit year", "patient=p1&date=25-12-31", fhir.ObservationSearch{}, "date"},
		{"date ten fraction digits", "patient=p1&date=2025-12-31T10:00:05.1234567890Z", fhir.ObservationSearch{}, "date"},
		{"date offset 15h", "patient=p1&date=2025-12-31T10:00%2B15:00", fhir.ObservationSearch{}, "date"},
		{"date eleven times", "patient=p1" + strings.Repeat("&date=ge2025", 11), fhir.ObservationSearch{}, "date"},
		{"count zero", "patient=p1&_count=0", fhir.ObservationSearch{}, "_count"},
		{"count negative", "patient=p1&_count=-5", fhir.ObservationSearch{}, "_count"},
		{"count not a number", "patient=p1&_count=ten", fhir.ObservationSearch{}, "_count"},
		{"count fraction", "patient=p1&_count=1.5", fhir.ObservationSearch{}, "_count"},
		{"count twice", "patient=p1&_count=1&_count=2", fhir.ObservationSearch{}, "_count"},
		{"sort other", "patient=p1&_sort=code", fhir.ObservationSearch{}, "_sort"},
		{"sort twice", "patient=p1&_sort=date&_sort=-date", fhir.ObservationSearch{}, "_sort"},
		{"cursor too long", "patient=p1&_cursor=" + strings.Repeat("c", 513), fhir.ObservationSearch{}, "_cursor"},
		{"cursor with space", "patient=p1&_cursor=a+b", fhir.ObservationSearch{}, "_cursor"},
		{"cursor with control", "patient=p1&_cursor=a%00b", fhir.ObservationSearch{}, "_cursor"},
		{"cursor empty", "patient=p1&_cursor=", fhir.ObservationSearch{}, "_cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fhir.ParseObservationSearch(q)
			if tt.field != "" {
				checkErr(t, err, vitalgate.EINVALID, tt.field)
				if !reflect.DeepEqual(got, fhir.ObservationSearch{}) {
					t.Errorf("result on error = %+v, want zero", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseObservationSearchMessages(t *testing.T) {
	tests := []struct {
		name, query, want string
	}{
		{"patient required", "code=x", "the patient parameter is required"},
		{"unknown parameter", "patient=p1&foo=1", "unknown search parameter foo"},
		{"repeated", "patient=p1&_sort=date&_sort=date", "parameter _sort may appear only once"},
		{"too long", "patient=p1&code=" + strings.Repeat("a", 300), "the value of code is longer than 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			_, err := fhir.ParseObservationSearch(q)
			if got := vitalgate.ErrorMessage(err); got != tt.want {
				t.Errorf("message = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestObservationSearchIncludes(t *testing.T) {
	q, _ := url.ParseQuery("patient=p1&date=2025-12-31")
	s, err := fhir.ParseObservationSearch(q)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		t    time.Time
		want bool
	}{
		{"start", utc(2025, 12, 31, 0, 0, 0, 0), true},
		{"last nanosecond", utc(2025, 12, 31, 23, 59, 59, 999999999), true},
		{"end excluded", utc(2026, 1, 1, 0, 0, 0, 0), false},
		{"before", utc(2025, 12, 30, 23, 59, 59, 0), false},
		{"open range", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Includes(tt.t); got != tt.want {
				t.Errorf("Includes(%v) = %v", tt.t, got)
			}
		})
	}
	if !(fhir.ObservationSearch{}).Includes(utc(1, 1, 1, 0, 0, 0, 0)) {
		t.Error("an open search does not include a time")
	}
}

func TestParsePatientSearch(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		want    fhir.PatientSearch
		wantKey string
		field   string
	}{
		{"identifier", "identifier=urn:oid:1.2.36.146.595.217.0.1|12345",
			fhir.PatientSearch{System: "urn:oid:1.2.36.146.595.217.0.1", Value: "12345", Count: 50}, "urn:oid:1.2.36.146.595.217.0.1|12345", ""},
		{"encoded bar", "identifier=https://h.example/mrn%7CA-7", fhir.PatientSearch{System: "https://h.example/mrn", Value: "A-7", Count: 50}, "https://h.example/mrn|A-7", ""},
		{"escaped value", `identifier=https://h.example/mrn|a\|b\,c`, fhir.PatientSearch{System: "https://h.example/mrn", Value: "a|b,c", Count: 50}, "https://h.example/mrn|a|b,c", ""},
		{"value with space", "identifier=urn:oid:1.2|A+7", fhir.PatientSearch{System: "urn:oid:1.2", Value: "A 7", Count: 50}, "urn:oid:1.2|A 7", ""},
		{"count and cursor", "identifier=urn:oid:1.2|7&_count=500&_cursor=abc", fhir.PatientSearch{System: "urn:oid:1.2", Value: "7", Count: 100, Cursor: "abc"}, "urn:oid:1.2|7", ""},

		{"missing", "_count=5", fhir.PatientSearch{}, "", "identifier"},
		{"value only", "identifier=12345", fhir.PatientSearch{}, "", "identifier"},
		{"empty system", "identifier=|12345", fhir.PatientSearch{}, "", "identifier"},
		{"empty value", "identifier=urn:oid:1.2|", fhir.PatientSearch{}, "", "identifier"},
		{"relative system", "identifier=mrn|12345", fhir.PatientSearch{}, "", "identifier"},
		{"unescaped bar in value", "identifier=urn:oid:1.2|a|b", fhir.PatientSearch{}, "", "identifier"},
		{"or values", "identifier=urn:oid:1.2|a,urn:oid:1.2|b", fhir.PatientSearch{}, "", "identifier"},
		{"bad escape", `identifier=urn:oid:1.2|a\nb`, fhir.PatientSearch{}, "", "identifier"},
		{"control character", "identifier=urn:oid:1.2|a%0Ab", fhir.PatientSearch{}, "", "identifier"},
		{"twice", "identifier=urn:oid:1.2|a&identifier=urn:oid:1.2|b", fhir.PatientSearch{}, "", "identifier"},
		{"name unsupported", "identifier=urn:oid:1.2|a&name=Chalmers", fhir.PatientSearch{}, "", "name"},
		{"modifier unsupported", "identifier:of-type=urn:oid:1.2|MR|a", fhir.PatientSearch{}, "", "identifier:of-type"},
		{"sort unsupported", "identifier=urn:oid:1.2|a&_sort=date", fhir.PatientSearch{}, "", "_sort"},
		{"bad count", "identifier=urn:oid:1.2|a&_count=x", fhir.PatientSearch{}, "", "_count"},
		{"too long", "identifier=urn:oid:1.2|" + strings.Repeat("9", 250), fhir.PatientSearch{}, "", "identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fhir.ParsePatientSearch(q)
			if tt.field != "" {
				checkErr(t, err, vitalgate.EINVALID, tt.field)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			if got.Key() != tt.wantKey {
				t.Errorf("Key = %q, want %q", got.Key(), tt.wantKey)
			}
		})
	}
}
