package deid_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vitalgate/vitalgate/deid"
)

// FuzzTransform: whatever the input, the transform does not panic, gives valid JSON when
// it succeeds, and no identifying string of the input (names, identifier values,
// telecom, address parts, narrative, notes, displays, ids) appears in the output. Seeds:
// the official examples in testdata/r4 and a synthetic patient, device and observation.
func FuzzTransform(f *testing.F) {
	files, _ := filepath.Glob("testdata/r4/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	pop := makePopulation(1, 5)
	f.Add(pop.patients[0], true)
	f.Add(pop.devices[0], true)
	f.Add(pop.observations[0], false)
	f.Fuzz(func(t *testing.T, in []byte, shift bool) {
		tr := deid.New(deid.NewPseudonyms(), deid.Options{Now: now, ShiftDates: shift})
		out, err := tr.Resource(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %s", out)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil || m["resourceType"] == nil {
			t.Fatalf("output is not a resource: %s", out)
		}
		if bad := leaked(in, out); len(bad) > 0 {
			t.Fatalf("input identifiers in the output: %v\ninput:  %s\noutput: %s", bad, in, out)
		}
	})
}
