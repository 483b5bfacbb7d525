package hl7v2_test

import (
	"testing"

	"github.com/vitalgate/vitalgate/hl7v2"
)

func TestIdentifierSystem(t *testing.T) {
	table := hl7v2.AuthorityTable{"HOSP": "https://hospital.example/mrn", "2.16.840.1.1": "urn:oid:2.16.840.1.1"}
	tests := []struct {
		name string
		hd   hl7v2.HD
		want string
	}{
		{"ISO", hl7v2.HD{Namespace: "Imaginary Hospital", UniversalID: "1.3.4.565", UniversalIDType: "ISO"}, "urn:oid:1.3.4.565"},
		{"ISO lower case type", hl7v2.HD{UniversalID: "1.2.3", UniversalIDType: "iso"}, "urn:oid:1.2.3"},
		{"UUID", hl7v2.HD{UniversalID: "0F2A4C3E-1111-4222-8333-444455556666", UniversalIDType: "UUID"}, "urn:uuid:0f2a4c3e-1111-4222-8333-444455556666"},
		{"URI", hl7v2.HD{UniversalID: "https://h.example/id", UniversalIDType: "URI"}, "https://h.example/id"},
		{"namespace in the table", hl7v2.HD{Namespace: "HOSP"}, "https://hospital.example/mrn"},
		{"bare universal id in the table", hl7v2.HD{UniversalID: "2.16.840.1.1"}, "urn:oid:2.16.840.1.1"},
		{"namespace not in the table", hl7v2.HD{Namespace: "Imaginary Hospital"}, "urn:vitalgate:hl7-authority:Imaginary%20Hospital"},
		{"unknown type falls back to the namespace", hl7v2.HD{Namespace: "A", UniversalID: "x", UniversalIDType: "L"}, "urn:vitalgate:hl7-authority:A"},
		{"bare universal id not in the table", hl7v2.HD{UniversalID: "x"}, "urn:vitalgate:hl7-authority:x"},
		{"nothing", hl7v2.HD{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hl7v2.IdentifierSystem(tt.hd, table); got != tt.want {
				t.Fatalf("IdentifierSystem(%+v) = %q, want %q", tt.hd, got, tt.want)
			}
		})
	}
}
