package pcd01_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/pcd01"
)

// FuzzMap checks that Map never panics, that every Observation it returns validates and
// survives the strict decoder, and that every error it returns is located and has an ACK
// code.
func FuzzMap(f *testing.F) {
	names, _ := filepath.Glob("testdata/0*")
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(bytes.ReplaceAll(b, []byte("|R"), []byte("|X")))
		f.Add(bytes.ReplaceAll(b, []byte("|NM|"), []byte("|NM|1")))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := hl7v2.Parse(data, hl7v2.Limits{MaxMessageBytes: 1 << 16})
		if err != nil {
			return
		}
		opt := options()
		opt.ProcessingIDs = []string{"P", "D", "T"}
		res, err := pcd01.Map(msg, opt)
		if err != nil {
			if ack, cond := pcd01.AckCodeFor(err); ack == "AA" || cond == "" {
				t.Fatalf("error %v gives ACK %s %s", err, ack, cond)
			}
			if vitalgate.ErrorCode(err) == vitalgate.EINTERNAL {
				t.Fatalf("internal error: %v", err)
			}
			return
		}
		for _, o := range res.Observations {
			checkFHIR(t, o)
		}
	})
}
