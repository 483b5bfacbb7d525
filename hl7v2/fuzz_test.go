package hl7v2_test

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/hl7v2"
)

// FuzzParse checks that Parse never panics, that whatever parses survives Encode and Parse
// unchanged, that Encode is a fixed point after one round, and that ParseTS and BuildACK
// cope with any parsed value.
func FuzzParse(f *testing.F) {
	for _, name := range sampleFiles(f) {
		data := mustRead(f, name)
		f.Add(data)
		f.Add(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\r")))
		f.Add(data[:len(data)/2])
		f.Add(bytes.ReplaceAll(data, []byte("^"), []byte(`\S\`)))
		f.Add(bytes.ReplaceAll(data, []byte("|"), []byte("~&")))
	}
	f.Add([]byte("MSH|^~\\&#|A\\X0D0A\\|\\.br\\\\P\\\\H\\\rOBX|1|ST|||a\\\\b\\"))
	f.Add([]byte("MSH!@*$%!A\rOBX!1!ST!x!!a@b$F$\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := hl7v2.Parse(data, hl7v2.Limits{MaxMessageBytes: 1 << 16})
		if err != nil {
			if !hl7v2.IsSyntaxError(err) {
				t.Fatalf("parse error not marked syntax: %v", err)
			}
			_ = hl7v2.BuildACK(nil, "AR", []hl7v2.AckError{hl7v2.AckErrorFrom(err)}, time.Unix(0, 0), "1")
			return
		}
		enc := hl7v2.Encode(m)
		m2, err := hl7v2.Parse(enc, hl7v2.Limits{MaxMessageBytes: 1 << 20})
		if err != nil {
			t.Fatalf("Parse(Encode(m)): %v\n%q", err, enc)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("Parse(Encode(m)) != m\n%q\n%q", data, enc)
		}
		if enc2 := hl7v2.Encode(m2); !bytes.Equal(enc, enc2) {
			t.Fatalf("Encode not stable\n%q\n%q", enc, enc2)
		}
		for _, s := range m.Segments {
			for _, f := range s.Fields {
				_, _, _ = hl7v2.ParseTS(f.Value(), nil)
			}
		}
		ack := hl7v2.BuildACK(m, "AE", []hl7v2.AckError{{Loc: hl7v2.Location{Segment: "OBX", Seq: 1, Field: 5}, Message: string(data)}}, time.Unix(0, 0), "1")
		if _, err := hl7v2.Parse(ack, hl7v2.Limits{MaxMessageBytes: 1 << 20}); err != nil {
			t.Fatalf("ACK does not parse: %v\n%q", err, ack)
		}
	})
}
