package fhir_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/fhir"
)

// now is after every example's dates.
var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func mustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func exampleFiles(tb testing.TB, pattern string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no files for %s: %v", pattern, err)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	return files
}

func mustGeneric(tb testing.TB, b []byte) any {
	tb.Helper()
	var v any
	d := json.NewDecoder(bytesReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// TestExamples decodes, validates and re-marshals every official example, and checks that
// the result decodes and validates again and is the same JSON.
func TestExamples(t *testing.T) {
	for _, name := range exampleFiles(t, "Observation-*.json") {
		t.Run(name, func(t *testing.T) {
			data := mustRead(t, name)
			o, err := fhir.DecodeObservation(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if err := fhir.ValidateObservation(o, now); err != nil {
				t.Fatalf("validate: %v", err)
			}
			out, err := o.Marshal()
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			o2, err := fhir.DecodeObservation(out)
			if err != nil {
				t.Fatalf("decode re-marshalled: %v\n%s", err, out)
			}
			if err := fhir.ValidateObservation(o2, now); err != nil {
				t.Fatalf("validate re-marshalled: %v", err)
			}
			if a, b := mustGeneric(t, data), mustGeneric(t, out); !reflect.DeepEqual(a, b) {
				t.Fatalf("re-marshalled JSON differs:\n%s", out)
			}
			if id, ok := o.SubjectID(); !ok || id != "example" {
				t.Errorf("SubjectID = %q, %v", id, ok)
			}
			if _, ok := o.EffectiveTime(); !ok {
				t.Errorf("no EffectiveTime")
			}
			if len(o.Codes()) == 0 {
				t.Errorf("no Codes")
			}
		})
	}
}
