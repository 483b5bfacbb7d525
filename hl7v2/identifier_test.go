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
		{"ISO that is not an OID", hl7v2.HD{UniversalID: "\xa0", UniversalIDType: "ISO"}, "urn:vitalgate:hl7-authority:%A0"},
		{"ISO with a letter", hl7v2.HD{Namespace: "A", UniversalID: "1.2.x", UniversalIDType: "ISO"}, "urn:vitalgate:hl7-authority:A"},
		{"UUID that is not one", hl7v2.HD{UniversalID: "not-a-uuid", UniversalIDType: "UUID"}, "urn:vitalgate:hl7-authority:not-a-uuid"},
		{"URI with a space", hl7v2.HD{UniversalID: "a b", UniversalIDType: "URI"}, "urn:vitalgate:hl7-authority:a%20b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hl7v2.IdentifierSystem(tt.hd, table); got != tt.want {
				t.Fatalf("IdentifierSystem(%+v) = %q, want %q", tt.hd, got, tt.want)
			}
		})
	}
}

func TestAuthorityTableFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
		want string
	}{
		{"two", []string{"Imaginary Hospital=urn:oid:1.3.4.565", "HOSP=https://h.example/mrn"}, true, "HOSP=https://h.example/mrn,Imaginary Hospital=urn:oid:1.3.4.565"},
		{"no system", []string{"HOSP"}, false, ""},
		{"relative system", []string{"HOSP=mrn"}, false, ""},
		{"no namespace", []string{"=urn:oid:1.2"}, false, ""},
		{"twice", []string{"A=urn:oid:1.2", "A=urn:oid:1.3"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := hl7v2.AuthorityTable{}
			var err error
			for _, a := range tt.args {
				if err = table.Set(a); err != nil {
					break
				}
			}
			if (err == nil) != tt.ok || (tt.ok && table.String() != tt.want) {
				t.Fatalf("Set: %v, table %q; want ok=%v %q", err, table.String(), tt.ok, tt.want)
			}
		})
	}
}
