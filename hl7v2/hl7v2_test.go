package hl7v2_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/hl7v2"
)

func sampleFiles(tb testing.TB) []string {
	tb.Helper()
	names, err := filepath.Glob("testdata/0*")
	if err != nil || len(names) == 0 {
		tb.Fatalf("no samples: %v", err)
	}
	return names
}

func mustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustParse(tb testing.TB, s string) *hl7v2.Message {
	tb.Helper()
	m, err := hl7v2.Parse([]byte(s), hl7v2.Limits{})
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return m
}

func TestParseSamples(t *testing.T) {
	for _, name := range sampleFiles(t) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data := mustRead(t, name)
			m, err := hl7v2.Parse(data, hl7v2.Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := m.Segment("MSH").Field(9).Rep(1).Comp(1).Value(); got != "ORU" {
				t.Errorf("MSH-9.1 = %q", got)
			}
			if m.Delims != hl7v2.DefaultDelimiters {
				t.Errorf("delims = %+v", m.Delims)
			}
			// Segment count equals the number of non-empty lines.
			lines := 0
			for _, l := range strings.FieldsFunc(string(data), func(r rune) bool { return r == '\r' || r == '\n' }) {
				if l != "" {
					lines++
				}
			}
			if len(m.Segments) != lines {
				t.Errorf("%d segments, want %d", len(m.Segments), lines)
			}
			checkRoundTrip(t, m)
		})
	}
}

func checkRoundTrip(t *testing.T, m *hl7v2.Message) {
	t.Helper()
	enc := hl7v2.Encode(m)
	m2, err := hl7v2.Parse(enc, hl7v2.Limits{})
	if err != nil {
		t.Fatalf("Parse(Encode(m)): %v\n%q", err, enc)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("Parse(Encode(m)) != m\n%q\n%#v\n%#v", enc, m, m2)
	}
	if enc2 := hl7v2.Encode(m2); !bytes.Equal(enc, enc2) {
		t.Fatalf("Encode not stable:\n%q\n%q", enc, enc2)
	}
}

func TestAccessors(t *testing.T) {
	m := mustParse(t, string(mustRead(t, "testdata/03_ipf_pcd01_nibp_maximum_fields.hl7")))
	obx := m.All("OBX")
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"MSH-1 field separator", m.Segment("MSH").Field(1).Value(), "|"},
		{"MSH-2 encoding characters", m.Segment("MSH").Field(2).Value(), `^~\&`},
		{"MSH-3.2", m.Segment("MSH").Field(3).Rep(1).Comp(2).Value(), "ACDE48234567ABCD"},
		{"MSH-10", m.Segment("MSH").Field(10).Value(), "MSGID1234"},
		{"PID-3.1", m.Segment("PID").Field(3).Value(), "111222333444"},
		{"PID-3.4.1 subcomponent", m.Segment("PID").Field(3).Rep(1).Comp(4).Sub(1), "Imaginary Hospital"},
		{"PID-3.4.2 subcomponent", m.Segment("PID").Field(3).Rep(1).Comp(4).Sub(2), "1.3.4.565"},
		{"OBX[3]-18 second repetition", obx[2].Field(18).Rep(2).Comp(2).Value(), "254BDG"},
		{"OBX[4]-8 repetitions", obx[3].Field(8).Rep(2).Value(), "QUES"},
		{"NTE[2]-3 HL7 null kept", m.All("NTE")[1].Field(3).Value(), `""`},
		{"absent segment", m.Segment("ZZZ").Field(1).Rep(1).Comp(1).Sub(1), ""},
		{"absent field", m.Segment("PID").Field(999).Value(), ""},
		{"absent component", m.Segment("PID").Field(3).Rep(1).Comp(99).Value(), ""},
		{"absent repetition", m.Segment("PID").Field(3).Rep(0).Value(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	if n := len(obx); n != 10 {
		t.Errorf("All(OBX) = %d segments, want 10", n)
	}
}

func TestEscapes(t *testing.T) {
	tests := []struct {
		name string
		in   string // OBX-5 as written
		want string // unescaped
	}{
		{"plain", `abc`, `abc`},
		{"field", `a\F\b`, `a|b`},
		{"component", `a\S\b`, `a^b`},
		{"subcomponent", `a\T\b`, `a&b`},
		{"repetition", `a\R\b`, `a~b`},
		{"escape", `a\E\b`, `a\b`},
		{"hex", `\X414243\`, `ABC`},
		{"hex CR LF", `a\X0D0A\b`, "a\r\nb"},
		{"line break", `one\.br\two`, "one\ntwo"},
		{"odd hex kept", `\X414\`, `\X414\`},
		{"bad hex kept", `\XZZ\`, `\XZZ\`},
		{"highlight kept", `\H\bold\N\`, `\H\bold\N\`},
		{"unknown kept", `\Zabc\`, `\Zabc\`},
		{"truncation without declaration kept", `\P\`, `\P\`},
		{"lone escape kept", `C:\temp`, `C:\temp`},
		{"empty escape kept", `a\\b`, `a\\b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, "MSH|^~\\&|A\rOBX|1|ST|x||"+tt.in+"\r")
			if got := m.Segment("OBX").Field(5).Value(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			checkRoundTrip(t, m)
		})
	}
}

func TestDelimiters(t *testing.T) {
	tests := []struct {
		name  string
		msg   string
		want  hl7v2.Delimiters
		value string // OBX-5.2
	}{
		{"default", "MSH|^~\\&|A\rOBX|1|ST|x||a^b\r", hl7v2.DefaultDelimiters, "b"},
		{"v2.7 truncation", "MSH|^~\\&#|A\rOBX|1|ST|x||a^b\\P\\\r",
			hl7v2.Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&', Truncation: '#'}, "b#"},
		{"unusual", "MSH!@*$%!A\rOBX!1!ST!x!!a@b$F$\r",
			hl7v2.Delimiters{Field: '!', Component: '@', Repetition: '*', Escape: '$', Subcomponent: '%'}, "b!"},
		{"LF segments", "MSH|^~\\&|A\nOBX|1|ST|x||a^b\n", hl7v2.DefaultDelimiters, "b"},
		{"CRLF segments", "MSH|^~\\&|A\r\nOBX|1|ST|x||a^b\r\n\r\n", hl7v2.DefaultDelimiters, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.msg)
			if m.Delims != tt.want {
				t.Errorf("delims %+v, want %+v", m.Delims, tt.want)
			}
			if got := m.Segment("OBX").Field(5).Rep(1).Comp(2).Value(); got != tt.value {
				t.Errorf("OBX-5.2 = %q, want %q", got, tt.value)
			}
			checkRoundTrip(t, m)
		})
	}
}

func TestParseErrors(t *testing.T) {
	big := strings.Repeat("x", 70<<10)
	tests := []struct {
		name  string
		msg   string
		lim   hl7v2.Limits
		code  string
		field string
	}{
		{"empty", "", hl7v2.Limits{}, vitalgate.EINVALID, "MSH"},
		{"not MSH first", "PID|1\rMSH|^~\\&|A\r", hl7v2.Limits{}, vitalgate.EINVALID, "MSH"},
		{"alphanumeric field separator", "MSHA^~\\&A\r", hl7v2.Limits{}, vitalgate.EINVALID, "MSH-1"},
		{"short encoding characters", "MSH|^~|A\r", hl7v2.Limits{}, vitalgate.EINVALID, "MSH-2"},
		{"duplicate encoding characters", "MSH|^^\\&|A\r", hl7v2.Limits{}, vitalgate.EINVALID, "MSH-2"},
		{"bad segment id", "MSH|^~\\&|A\rpid|1\r", hl7v2.Limits{}, vitalgate.EINVALID, ""},
		{"segment id too long", "MSH|^~\\&|A\rPIDX|1\r", hl7v2.Limits{}, vitalgate.EINVALID, ""},
		{"message too large", "MSH|^~\\&|A\r", hl7v2.Limits{MaxMessageBytes: 5}, vitalgate.ETOOLARGE, ""},
		{"too many segments", "MSH|^~\\&|A\rPID|1\rOBX|1\r", hl7v2.Limits{MaxSegments: 2}, vitalgate.ETOOLARGE, ""},
		{"field too large", "MSH|^~\\&|A\rPID|1\rOBX|1\rOBX|1|NM|x||" + big + "\r", hl7v2.Limits{}, vitalgate.ETOOLARGE, "OBX[2]-5"},
		{"field too large small limit", "MSH|^~\\&|ABCDEFGH\r", hl7v2.Limits{MaxFieldBytes: 4}, vitalgate.ETOOLARGE, "MSH-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := hl7v2.Parse([]byte(tt.msg), tt.lim)
			if err == nil {
				t.Fatal("no error")
			}
			if got := vitalgate.ErrorCode(err); got != tt.code {
				t.Errorf("code %q, want %q (%v)", got, tt.code, err)
			}
			if got := vitalgate.ErrorField(err); got != tt.field {
				t.Errorf("field %q, want %q (%v)", got, tt.field, err)
			}
			var ve *vitalgate.Error
			if !errors.As(err, &ve) {
				t.Error("errors.As finds no *vitalgate.Error")
			}
			if !hl7v2.IsSyntaxError(err) {
				t.Error("not marked as a syntax error")
			}
			if hl7v2.ErrorCondition(err) == "" {
				t.Error("no table 0357 condition")
			}
		})
	}
}

func TestLocation(t *testing.T) {
	tests := []struct {
		name string
		loc  hl7v2.Location
		want string
	}{
		{"header field", hl7v2.Location{Segment: "MSH", Seq: 1, Field: 9}, "MSH-9"},
		{"occurrence", hl7v2.Location{Segment: "OBX", Seq: 3, Field: 5}, "OBX[3]-5"},
		{"component", hl7v2.Location{Segment: "PID", Seq: 1, Field: 3, Component: 4}, "PID-3.4"},
		{"repetition", hl7v2.Location{Segment: "OBX", Seq: 2, Field: 18, Rep: 2, Component: 3}, "OBX[2]-18(2).3"},
		{"segment only", hl7v2.Location{Segment: "PID"}, "PID"},
		{"nowhere", hl7v2.Location{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.loc.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	err := hl7v2.NewError(vitalgate.EINVALID, hl7v2.CondRequiredMissing, hl7v2.Location{Segment: "PID", Seq: 1, Field: 3}, "patient id is required")
	wrapped := errors.Join(errors.New("context"), err)
	if loc, ok := hl7v2.ErrorLocation(wrapped); !ok || loc.Field != 3 {
		t.Errorf("ErrorLocation = %+v, %v", loc, ok)
	}
	if vitalgate.ErrorCode(wrapped) != vitalgate.EINVALID || vitalgate.ErrorField(wrapped) != "PID-3" {
		t.Errorf("vitalgate view: %q %q", vitalgate.ErrorCode(wrapped), vitalgate.ErrorField(wrapped))
	}
	if hl7v2.ErrorCondition(wrapped) != "101" || hl7v2.IsSyntaxError(wrapped) {
		t.Error("condition or syntax flag wrong")
	}
}

func TestParseTS(t *testing.T) {
	plus5 := time.FixedZone("", 5*3600)
	minus4 := time.FixedZone("", -4*3600)
	tests := []struct {
		name string
		in   string
		want time.Time
		prec hl7v2.Precision
		bad  bool
	}{
		{"year", "2009", time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC), hl7v2.PrecYear, false},
		{"month", "200908", time.Date(2009, 8, 1, 0, 0, 0, 0, time.UTC), hl7v2.PrecMonth, false},
		{"day", "20090813", time.Date(2009, 8, 13, 0, 0, 0, 0, time.UTC), hl7v2.PrecDay, false},
		{"minute", "200908130957", time.Date(2009, 8, 13, 9, 57, 0, 0, time.UTC), hl7v2.PrecMinute, false},
		{"second with offset", "20090813095715+0500", time.Date(2009, 8, 13, 9, 57, 15, 0, plus5), hl7v2.PrecSecond, false},
		{"fraction with offset", "20210425230332.872-0400", time.Date(2021, 4, 25, 23, 3, 32, 872e6, minus4), hl7v2.PrecFraction3, false},
		{"day with offset", "20090813+0500", time.Date(2009, 8, 13, 0, 0, 0, 0, plus5), hl7v2.PrecDay, false},
		{"empty", "", time.Time{}, 0, true},
		{"odd length", "20091", time.Time{}, 0, true},
		{"letters", "2009AB", time.Time{}, 0, true},
		{"month 13", "200913", time.Time{}, 0, true},
		{"feb 30", "20230230", time.Time{}, 0, true},
		{"hour 24", "2023010124", time.Time{}, 0, true},
		{"second 60", "20230101235960", time.Time{}, 0, true},
		{"fraction without seconds", "202301012359.5", time.Time{}, 0, true},
		{"five fraction digits", "20230101235959.12345", time.Time{}, 0, true},
		{"short offset", "20230101+05", time.Time{}, 0, true},
		{"offset too big", "20230101+1500", time.Time{}, 0, true},
		{"sign in year", "+2023", time.Time{}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, prec, err := hl7v2.ParseTS(tt.in, nil)
			if tt.bad {
				if err == nil || vitalgate.ErrorCode(err) != vitalgate.EINVALID {
					t.Fatalf("err = %v, want EINVALID", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) || prec != tt.prec {
				t.Errorf("got %v %v, want %v %v", got, prec, tt.want, tt.prec)
			}
			_, off := got.Zone()
			if _, woff := tt.want.Zone(); off != woff {
				t.Errorf("offset %d, want %d", off, woff)
			}
		})
	}
	berlin := time.FixedZone("CET", 3600)
	got, _, err := hl7v2.ParseTS("20081211144500", berlin)
	if err != nil || got.Location() != berlin || got.Hour() != 14 {
		t.Errorf("default location not used: %v %v", got, err)
	}
}

func TestBuildACK(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	orig := mustParse(t, string(mustRead(t, "testdata/03_ipf_pcd01_nibp_maximum_fields.hl7")))
	tests := []struct {
		name string
		msg  *hl7v2.Message
		code string
		errs []hl7v2.AckError
		want []string
	}{
		{"accept", orig, "AA", nil, []string{
			"MSH|^~\\&|ReceiveApp^1.2.3.5^ISO|ReceiveFac^1.2.3.6^ISO|AcmeInc^ACDE48234567ABCD^EUI-64|SendFac^1.2.3.4^ISO|20260301120000+0000||ACK^R01^ACK|ACK1|P|2.6",
			"MSA|AA|MSGID1234",
		}},
		{"error with location", orig, "AE", []hl7v2.AckError{
			{Loc: hl7v2.Location{Segment: "OBX", Seq: 3, Field: 5}, Condition: "101", Message: "value | is ^ required"},
			{Loc: hl7v2.Location{Segment: "OBX", Seq: 2, Field: 6, Component: 3}, Condition: "103", Severity: "W", Message: "unit"},
		}, []string{
			"MSH|^~\\&|ReceiveApp^1.2.3.5^ISO|ReceiveFac^1.2.3.6^ISO|AcmeInc^ACDE48234567ABCD^EUI-64|SendFac^1.2.3.4^ISO|20260301120000+0000||ACK^R01^ACK|ACK1|P|2.6",
			"MSA|AE|MSGID1234",
			"ERR||OBX^3^5|101^Required field missing^HL70357|E||||value \\F\\ is \\S\\ required",
			"ERR||OBX^2^6^1^3|103^Table value not found^HL70357|W||||unit",
		}},
		{"unparseable", nil, "AR", []hl7v2.AckError{{Condition: "100", Message: "message must start with an MSH segment"}}, []string{
			"MSH|^~\\&|VITALGATE||||20260301120000+0000||ACK|ACK1|P|2.6",
			"MSA|AR",
			"ERR|||100^Segment sequence error^HL70357|E||||message must start with an MSH segment",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack := hl7v2.BuildACK(tt.msg, tt.code, tt.errs, now, "ACK1")
			got := strings.Split(strings.TrimSuffix(string(ack), "\r"), "\r")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			m := mustParse(t, string(ack))
			if m.Segment("MSA").Field(1).Value() != tt.code {
				t.Error("MSA-1 does not parse back")
			}
		})
	}
}

func TestAckErrorFrom(t *testing.T) {
	_, err := hl7v2.Parse([]byte("MSH|^~\\&|A\rOBX|1|NM|x||"+strings.Repeat("9", 100)+"\r"), hl7v2.Limits{MaxFieldBytes: 50})
	ae := hl7v2.AckErrorFrom(err)
	if ae.Loc != (hl7v2.Location{Segment: "OBX", Seq: 1, Field: 5}) || ae.Condition == "" || ae.Message == "" {
		t.Errorf("AckErrorFrom = %+v", ae)
	}
	internal := hl7v2.AckErrorFrom(errors.New("secret detail"))
	if strings.Contains(internal.Message, "secret") {
		t.Errorf("internal detail leaked: %q", internal.Message)
	}
}
