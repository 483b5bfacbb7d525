package simulator_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/lab"
	"github.com/vitalgate/vitalgate/simulator"
)

// TestBloodGasORUMaps: every generated blood gas message is a laboratory message that
// package lab maps into BloodGasCount valid results, one report and one specimen.
func TestBloodGasORUMaps(t *testing.T) {
	g, err := simulator.NewGenerator(simulator.KindBloodGas, bytes.NewReader(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	for i := 0; i < 50; i++ {
		raw, err := simulator.NewBloodGasORU(g, "bga-1", "pat-1", now, "ctl-"+strings.Repeat("x", i%3+1))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := hl7v2.Parse(raw, hl7v2.Limits{})
		if err != nil {
			t.Fatalf("message %d does not parse: %v", i, err)
		}
		if !lab.Recognize(msg) {
			t.Fatalf("message %d is not recognized as a lab message", i)
		}
		res, err := lab.Map(msg, lab.Options{DeviceID: "bga-1", Now: func() time.Time { return now },
			ResolvePatient: func(p lab.PatientIdentifier) (string, error) { return p.Value, nil }})
		if err != nil {
			t.Fatalf("message %d: %v\n%s", i, err, bytes.ReplaceAll(raw, []byte("\r"), []byte("\n")))
		}
		if len(res.Results) != simulator.BloodGasCount || len(res.Reports) != 1 || len(res.Specimens) != 1 {
			t.Fatalf("message %d: %d results, %d reports, %d specimens", i, len(res.Results), len(res.Reports), len(res.Specimens))
		}
	}
	if _, err := simulator.NewBloodGasORU(g, "bad|id", "pat-1", now, "c"); err == nil {
		t.Fatal("a device id with an HL7 separator was written")
	}
}

// TestShiftHL7Times: every second-precision time moves by the same amount (MSH-7 to the
// target), zones kept; dates and longer digit strings stay.
func TestShiftHL7Times(t *testing.T) {
	in := "MSH|^~\\&|a|b|||20261201083015-0500||ORU^R01|X|P|2.5.1\rPID|1||1^^^A||N||19700101\r" +
		"OBX|1|NM|c^d^LN||1|u|||||F|||20261201082600-0500||||0123456789ABCDEF1234|20261201082830\r"
	to := time.Date(2026, 12, 9, 13, 30, 15, 0, time.UTC)
	got := string(simulator.ShiftHL7Times([]byte(in), to))
	for _, want := range []string{"|20261209083015-0500|", "|20261209082600-0500|", "|20261209082830\r", "|19700101\r", "|0123456789ABCDEF1234|"} {
		if !strings.Contains(got, want) {
			t.Errorf("shifted message lacks %q:\n%s", want, strings.ReplaceAll(got, "\r", "\n"))
		}
	}
}
