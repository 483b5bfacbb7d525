package audit_test

import (
	"errors"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vitalgate/vitalgate/audit"
)

func TestEntryMarshal(t *testing.T) {
	ts := time.Date(2025, 3, 14, 10, 26, 53, 589793000, time.FixedZone("CET", 3600))
	tests := []struct {
		name  string
		entry audit.Entry
		want  string
	}{
		{"minimal", audit.Entry{}, `{"time":"0001-01-01T00:00:00Z"}`},
		{"device create", audit.Entry{Time: ts, Action: "C", Type: "rest", Subtype: "create", Outcome: "0",
			AgentType: "device", AgentID: "pump-7", AgentRole: "device", SourceIP: "192.0.2.7",
			PatientIndex: "00ff", Resources: []string{"Observation/1", "Observation/2"}, RequestID: "r1", Node: "n1"},
			`{"time":"2025-03-14T09:26:53.589793Z","action":"C","type":"rest","subtype":"create","outcome":"0",` +
				`"agentType":"device","agentId":"pump-7","agentRole":"device","sourceIp":"192.0.2.7",` +
				`"patientIndex":"00ff","resources":["Observation/1","Observation/2"],"requestId":"r1","node":"n1"}`},
		{"search with emergency and count", audit.Entry{Time: ts.Truncate(time.Second), Action: "E", Type: "rest",
			Subtype: "search", Outcome: "4", OutcomeDesc: "scope denied", Emergency: true, Count: 12},
			`{"time":"2025-03-14T09:26:53Z","action":"E","type":"rest","subtype":"search","outcome":"4",` +
				`"outcomeDesc":"scope denied","emergency":true,"count":12}`},
		{"aggregated refusals", audit.Entry{Time: ts.Truncate(time.Second), Action: "E", Type: "authn",
			Outcome: "4", AgentType: "client", SourceIP: "192.0.2.9", Occurrences: 299},
			`{"time":"2025-03-14T09:26:53Z","action":"E","type":"authn","outcome":"4",` +
				`"agentType":"client","sourceIp":"192.0.2.9","occurrences":299}`},
		{"escaping", audit.Entry{Time: ts.Truncate(time.Second), OutcomeDesc: "a\"b\\c\nd\te\x01f</g>\u2028é"},
			`{"time":"2025-03-14T09:26:53Z","outcomeDesc":"a\"b\\c\nd\te\u0001f</g>` + "\u2028é" + `"}`},
		{"invalid UTF-8 becomes U+FFFD", audit.Entry{Time: ts.Truncate(time.Second), AgentID: "x\xffy"},
			`{"time":"2025-03-14T09:26:53Z","agentId":"x` + "\uFFFD" + `y"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.entry.Marshal())
			if got != tt.want {
				t.Errorf("Marshal =\n%s\nwant\n%s", got, tt.want)
			}
			e, err := audit.UnmarshalEntry([]byte(got))
			if err != nil {
				t.Fatalf("UnmarshalEntry: %v", err)
			}
			if again := string(e.Marshal()); again != got {
				t.Errorf("re-Marshal =\n%s\nwant\n%s", again, got)
			}
			if audit.LeafHash([]byte(got)) != tt.entry.LeafHash() {
				t.Errorf("Entry.LeafHash differs from LeafHash(Marshal())")
			}
		})
	}
}

func TestEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		entry audit.Entry
	}{
		{"realistic", realisticEntry(42)},
		{"login failure", audit.Entry{Time: time.Unix(1700000000, 1).UTC(), Action: "E", Type: "authn", Subtype: "login",
			Outcome: "8", OutcomeDesc: "bad secret", AgentType: "client", AgentID: "c1", SourceIP: "2001:db8::1"}},
		{"negative count", audit.Entry{Time: time.Unix(0, 0).UTC(), Count: -3}},
		{"unicode", audit.Entry{Time: time.Unix(0, 0).UTC(), AgentID: "Zoë 🩺", Node: "\x00\x1f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.UnmarshalEntry(tt.entry.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if !got.Time.Equal(tt.entry.Time) {
				t.Errorf("time %v, want %v", got.Time, tt.entry.Time)
			}
			got.Time, tt.entry.Time = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.entry) {
				t.Errorf("got %+v, want %+v", got, tt.entry)
			}
		})
	}
}

func TestUnmarshalEntryRejectsNonCanonical(t *testing.T) {
	const canon = `{"time":"2025-03-14T09:26:53Z","action":"R","count":2}`
	if _, err := audit.UnmarshalEntry([]byte(canon)); err != nil {
		t.Fatalf("canonical input rejected: %v", err)
	}
	tests := []struct {
		name, input string
	}{
		{"white space", `{"time":"2025-03-14T09:26:53Z", "action":"R","count":2}`},
		{"trailing newline", canon + "\n"},
		{"reordered", `{"action":"R","time":"2025-03-14T09:26:53Z","count":2}`},
		{"unknown member", `{"time":"2025-03-14T09:26:53Z","action":"R","count":2,"value":120}`},
		{"repeated member", `{"time":"2025-03-14T09:26:53Z","action":"R","action":"R","count":2}`},
		{"other case", `{"time":"2025-03-14T09:26:53Z","Action":"R","count":2}`},
		{"zero written out", `{"time":"2025-03-14T09:26:53Z","action":"R","emergency":false,"count":2}`},
		{"empty string written out", `{"time":"2025-03-14T09:26:53Z","action":"R","type":"","count":2}`},
		{"empty list written out", `{"time":"2025-03-14T09:26:53Z","action":"R","resources":[],"count":2}`},
		{"time zone offset", `{"time":"2025-03-14T10:26:53+01:00","action":"R","count":2}`},
		{"trailing zero in fraction", `{"time":"2025-03-14T09:26:53.100Z","action":"R","count":2}`},
		{"needless escape", `{"time":"2025-03-14T09:26:53Z","action":"\u0052","count":2}`},
		{"float count", `{"time":"2025-03-14T09:26:53Z","action":"R","count":2.0}`},
		{"two objects", canon + canon},
		{"missing time", `{"action":"R","count":2}`},
		{"bad time", `{"time":"yesterday","action":"R","count":2}`},
		{"not an object", `["R"]`},
		{"invalid UTF-8", "{\"time\":\"2025-03-14T09:26:53Z\",\"action\":\"\xff\",\"count\":2}"},
		{"empty", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := audit.UnmarshalEntry([]byte(tt.input)); err == nil {
				t.Errorf("accepted %s", tt.input)
			}
		})
	}
	if _, err := audit.UnmarshalEntry([]byte(tests[0].input)); !errors.Is(err, audit.ErrNotCanonical) {
		t.Errorf("white space: err = %v, want ErrNotCanonical", err)
	}
}

func TestEntryValidate(t *testing.T) {
	good := realisticEntry(1)
	tests := []struct {
		name   string
		modify func(*audit.Entry)
		ok     bool
	}{
		{"good", func(*audit.Entry) {}, true},
		{"no patient", func(e *audit.Entry) { e.PatientIndex = "" }, true},
		{"no time", func(e *audit.Entry) { e.Time = time.Time{} }, false},
		{"year 10000", func(e *audit.Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, false},
		{"bad action", func(e *audit.Entry) { e.Action = "X" }, false},
		{"no type", func(e *audit.Entry) { e.Type = "" }, false},
		{"bad outcome", func(e *audit.Entry) { e.Outcome = "1" }, false},
		{"bad agent type", func(e *audit.Entry) { e.AgentType = "robot" }, false},
		{"no agent id", func(e *audit.Entry) { e.AgentID = "" }, false},
		{"plaintext patient id", func(e *audit.Entry) { e.PatientIndex = "MRN-12345" }, false},
		{"upper-case patient index", func(e *audit.Entry) { e.PatientIndex = "ABCD" }, false},
		{"odd patient index", func(e *audit.Entry) { e.PatientIndex = "abc" }, false},
		{"negative count", func(e *audit.Entry) { e.Count = -1 }, false},
		{"empty resource", func(e *audit.Entry) { e.Resources = []string{""} }, false},
		{"invalid UTF-8", func(e *audit.Entry) { e.OutcomeDesc = "\xff" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good
			e.Resources = append([]string(nil), good.Resources...)
			tt.modify(&e)
			if err := e.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// FuzzUnmarshalEntry checks that whatever UnmarshalEntry accepts is exactly the canonical
// encoding of what it returns.
func FuzzUnmarshalEntry(f *testing.F) {
	f.Add(realisticEntry(3).Marshal())
	f.Add([]byte(`{"time":"2025-03-14T09:26:53Z","action":"R","count":2}`))
	f.Add([]byte(`{"time":"2025-03-14T09:26:53.000000001Z","emergency":true,"resources":["a","b\u0000"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := audit.UnmarshalEntry(data)
		if err != nil {
			return
		}
		if got := e.Marshal(); string(got) != string(data) {
			t.Fatalf("accepted non-canonical\n%q\ncanonical\n%q", data, got)
		}
	})
}

// FuzzEntryRoundTrip checks that Marshal output always decodes, to an entry that encodes the
// same way.
func FuzzEntryRoundTrip(f *testing.F) {
	f.Add(int64(0), "R", "rest", "x\xff\x00\"\\", "Observation/1", 3, true)
	f.Add(int64(1741944413589793000), "E", "", "é\u2028", "", -1, false)
	f.Fuzz(func(t *testing.T, nanos int64, action, typ, desc, resource string, count int, emergency bool) {
		e := audit.Entry{Time: time.Unix(0, nanos), Action: action, Type: typ, OutcomeDesc: desc,
			Emergency: emergency, Count: count, Node: desc}
		if resource != "" {
			e.Resources = []string{resource, desc}
		}
		data := e.Marshal()
		got, err := audit.UnmarshalEntry(data)
		if err != nil {
			t.Fatalf("UnmarshalEntry(%q): %v", data, err)
		}
		if again := got.Marshal(); string(again) != string(data) {
			t.Fatalf("re-Marshal\n%q\nwant\n%q", again, data)
		}
		if utf8.ValidString(desc) && got.OutcomeDesc != desc {
			t.Fatalf("OutcomeDesc %q, want %q", got.OutcomeDesc, desc)
		}
	})
}
