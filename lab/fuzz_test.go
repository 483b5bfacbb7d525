package lab_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/lab"
	"github.com/vitalgate/vitalgate/pcd01"
)

// FuzzMap checks over any message that parses that Map never panics; that on success every
// Observation, DiagnosticReport and Specimen is valid, is JSON that decodes strictly and
// re-encodes to the same bytes, and every report's results are results of the message; and
// that every failure is a *hl7v2.Error wrapping a root-package *vitalgate.Error that names
// an HL7 field, is not internal, and has an ACK code and condition. The seed corpus is the
// messages of testdata and copies with statuses, value types and units changed.
func FuzzMap(f *testing.F) {
	names, _ := filepath.Glob("testdata/*.hl7")
	if len(names) == 0 {
		f.Fatal("no seed messages")
	}
	for _, name := range names {
		b := mustRead(f, filepath.Base(name))
		for _, accept := range []bool{false, true} {
			f.Add(b, accept)
		}
		f.Add(bytes.ReplaceAll(b, []byte("|F|"), []byte("|C|")), true)
		f.Add(bytes.ReplaceAll(b, []byte("|F|"), []byte("|X|")), false)
		f.Add(bytes.ReplaceAll(b, []byte("|NM|"), []byte("|SN|")), true)
		f.Add(bytes.ReplaceAll(b, []byte("mmol/L"), []byte("mg/dL")), false)
		f.Add(bytes.ReplaceAll(b, []byte("OUL^R22"), []byte("ORU^R01")), true)
		f.Add(bytes.ReplaceAll(b, []byte("ORU^R01"), []byte("OUL^R22")), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, accept bool) {
		msg, err := hl7v2.Parse(data, hl7v2.Limits{MaxMessageBytes: 1 << 16})
		if err != nil {
			return
		}
		opt := options()
		opt.AcceptUnknownCodes = accept
		res, err := lab.Map(msg, opt)
		if err != nil {
			var he *hl7v2.Error
			var ve *vitalgate.Error
			if !errors.As(err, &he) || !errors.As(err, &ve) {
				t.Fatalf("error %T %v is not a *hl7v2.Error wrapping a *vitalgate.Error", err, err)
			}
			if ve.Field == "" || he.Loc.Segment == "" || ve.Field != he.Loc.String() {
				t.Fatalf("error %v names no field (%q, %+v)", err, ve.Field, he.Loc)
			}
			if ve.Code == vitalgate.EINTERNAL {
				t.Fatalf("internal error: %v", err)
			}
			if ack, cond := pcd01.AckCodeFor(err); ack == hl7v2.AckAA || cond == "" {
				t.Fatalf("error %v gives ACK %s %s", err, ack, cond)
			}
			return
		}
		checkResources(t, res)
		keys := map[string]bool{}
		for _, e := range res.Results {
			keys[e.Key.System+"|"+e.Key.Value] = true
			if e.Report < 0 || e.Report >= len(res.Reports) {
				t.Fatalf("%s: report %d of %d", e.Loc, e.Report, len(res.Reports))
			}
		}
		for _, r := range res.Reports {
			for _, ref := range r.Result {
				if ref.Identifier == nil || !keys[ref.Identifier.System+"|"+ref.Identifier.Value] {
					t.Fatalf("report result %+v is no result of the message", ref)
				}
			}
			b, _ := r.Marshal()
			if !json.Valid(b) {
				t.Fatalf("invalid JSON %s", b)
			}
		}
	})
}
