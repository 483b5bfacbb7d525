package bench_test

import (
	"bytes"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/bench"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/simulator"
)

// TestTemplatesAreUnique checks that every filled body names new observations: a bundle's
// identified entries get distinct identifier values, two fills of the same template differ,
// and the result still passes strict decoding (a benchmark that resent identifiers would
// measure resends, not ingest).
func TestTemplatesAreUnique(t *testing.T) {
	at := time.Now().Add(-time.Minute)
	var docs [][]byte
	for i, r := range []simulator.Reading{{Vital: simulator.HeartRate, Value: 70}, {Vital: simulator.OxygenSaturation, Value: 97}, {Vital: simulator.HeartRate, Value: 71}} {
		ident := simulator.Identifier{}
		if i%2 == 0 {
			ident = simulator.Identifier{System: "urn:vitalgate:bench:d1", Value: bench.SlotMark}
		}
		doc, err := simulator.NewIdentifiedObservation(r, "d1", "p1", at, ident)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	bundle, err := simulator.NewBundle("batch", docs, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var seq atomic.Uint64
	first, slots := bench.FillTemplate(bundle, &seq)
	second, _ := bench.FillTemplate(bundle, &seq)
	if slots != 2 {
		t.Fatalf("%d identifier slots, want 2", slots)
	}
	if bytes.Equal(first, second) || bytes.Contains(first, []byte(bench.SlotMark)) {
		t.Fatalf("fills are not fresh:\n%s\n%s", first, second)
	}
	seen := map[string]bool{}
	for _, body := range [][]byte{first, second} {
		b, err := fhir.DecodeBundle(body, fhir.DefaultLimits())
		if err != nil {
			t.Fatalf("strict decode: %v", err)
		}
		for _, e := range b.Entry {
			for _, id := range e.Resource.Identifier {
				if seen[id.Value] {
					t.Errorf("identifier %q repeats", id.Value)
				}
				seen[id.Value] = true
			}
		}
	}
	if len(seen) != 4 {
		t.Errorf("%d distinct identifiers in two fills, want 4", len(seen))
	}
	if plain, n := bench.FillTemplate(docs[1], &seq); n != 0 || !bytes.Equal(plain, docs[1]) {
		t.Errorf("a body without identifier changed: %d slots", n)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tt := range tests {
		if got := bench.Median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestSinceID checks the lower bound the bench counts a run's rows from: every id ingest
// makes at or after t sorts at or after it, every id made before t sorts before it.
func TestSinceID(t *testing.T) {
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	for _, d := range []time.Duration{0, time.Millisecond, time.Hour} {
		id, err := ingest.NewID(at.Add(d), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if id < bench.SinceID(at) {
			t.Errorf("id %s made %v after the bound sorts before it (%s)", id, d, bench.SinceID(at))
		}
	}
	old, _ := ingest.NewID(at.Add(-time.Millisecond), rand.Reader)
	if old >= bench.SinceID(at) {
		t.Errorf("id %s made before the bound sorts after it (%s)", old, bench.SinceID(at))
	}
}
