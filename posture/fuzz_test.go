package posture_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vitalgate/vitalgate/posture"
)

func seed(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed %s: %v", pattern, err)
	}
	for _, p := range files {
		f.Add(mustRead(f, p[len("testdata/"):]))
	}
}

// FuzzParseSBOM: any input parses or is refused, never panics; a parsed SBOM parses the
// same again, and matching its components against the real advisories never panics.
func FuzzParseSBOM(f *testing.F) {
	seed(f, "sbom/*.json")
	var advisories []posture.Advisory
	files, _ := posture.ReadPath(filepath.Join("testdata", "osv"), posture.MaxAdvisoryBytes)
	for _, file := range files {
		if a, err := posture.ParseAdvisory(file.Data); err == nil {
			advisories = append(advisories, a)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sb, err := posture.ParseSBOM(data)
		if err != nil {
			return
		}
		again, err := posture.ParseSBOM(data)
		if err != nil || !reflect.DeepEqual(sb, again) {
			t.Fatalf("a second parse differs: %v", err)
		}
		for _, c := range sb.Components {
			posture.Match(advisories, c)
		}
	})
}

// FuzzParseAdvisory: a parsed OSV record survives a JSON round trip.
func FuzzParseAdvisory(f *testing.F) {
	seed(f, "osv/*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := posture.ParseAdvisory(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		again, err := posture.ParseAdvisory(b)
		if err != nil {
			t.Fatalf("the re-encoded record does not parse: %v\n%s", err, b)
		}
		if again.ID != a.ID || len(again.Affected) != len(a.Affected) || !reflect.DeepEqual(again.Aliases, a.Aliases) {
			t.Fatalf("round trip: %+v != %+v", again, a)
		}
	})
}

// FuzzParseKEV: a parsed catalog survives a JSON round trip.
func FuzzParseKEV(f *testing.F) {
	seed(f, "kev/*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := posture.ParseKEV(data)
		if err != nil {
			return
		}
		b, _ := json.Marshal(c)
		again, err := posture.ParseKEV(b)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzParseVEX: any input parses or is refused; every statement names a vulnerability and
// a not_affected one has its justification.
func FuzzParseVEX(f *testing.F) {
	seed(f, "vex/*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		sts, err := posture.ParseVEX(data)
		if err != nil {
			return
		}
		for _, s := range sts {
			if s.Vulnerability == "" || (s.Status == posture.VEXNotAffected && s.Justification == "" && s.Detail == "") {
				t.Fatalf("statement %+v", s)
			}
		}
	})
}
