package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/vitalgate/vitalgate/simulator"
)

// slotMark is the placeholder of an identifier value in a body template: 16 characters that
// nothing else in a generated body contains, overwritten by a fresh hex sequence number for
// every request.
const slotMark = "@@@@@@@@@@@@@@@@"

// template is a request body whose identifier values are filled in for each request, so that
// every request names new observations: a device's retry carries the same identifier and is
// recognised as a resend (nothing stored), so a benchmark that sent the same identified body
// twice would measure resends, not ingest.
type template struct {
	body  []byte
	slots []int // offsets of slotMark in body
}

// newTemplate finds the identifier slots of body.
func newTemplate(body []byte) template {
	t := template{body: body}
	for off := 0; ; {
		i := bytes.Index(body[off:], []byte(slotMark))
		if i < 0 {
			return t
		}
		t.slots = append(t.slots, off+i)
		off += i + len(slotMark)
	}
}

// fill returns a copy of the body with every slot set to the next numbers of seq.
func (t template) fill(seq *atomic.Uint64) []byte {
	if len(t.slots) == 0 {
		return t.body
	}
	out := bytes.Clone(t.body)
	var n [8]byte
	for _, off := range t.slots {
		binary.BigEndian.PutUint64(n[:], seq.Add(1))
		hex.Encode(out[off:off+len(slotMark)], n[:])
	}
	return out
}

// identifiers returns how many identified observations a filled body carries.
func (t template) identifiers() int { return len(t.slots) }

// benchIdentifier is the identifier placeholder of a device's observations: a system of the
// device's own and a value filled in per request (template.fill).
func benchIdentifier(deviceID string) simulator.Identifier {
	return simulator.Identifier{System: "urn:vitalgate:bench:" + deviceID, Value: slotMark}
}

// observationTemplates returns rounds of generated Observations of a device, effective now
// and earlier (one round per second), as templates: every other one (half of them) carries
// an identifier filled in per request, as devices that retry set one; with identified set,
// every one does.
func (d *benchDevice) observationTemplates(rounds int, identified bool) ([]template, error) {
	now := time.Now()
	var out []template
	k := 0
	for r := range rounds {
		at := now.Add(-time.Duration(rounds-r) * time.Second)
		for _, reading := range d.gen.Next() {
			var ident simulator.Identifier
			if identified || k%2 == 0 {
				ident = benchIdentifier(d.id)
			}
			k++
			doc, err := simulator.NewIdentifiedObservation(reading, d.id, d.patient, at, ident)
			if err != nil {
				return nil, err
			}
			out = append(out, newTemplate(doc))
		}
	}
	return out, nil
}

// bundleTemplate returns a batch Bundle of n of a device's Observations (half identified,
// as observationTemplates) as a template, and the Observations it holds.
func (d *benchDevice) bundleTemplate(n int) (template, []template, error) {
	ts, err := d.observationTemplates((n+3)/4+1, false)
	if err != nil {
		return template{}, nil, err
	}
	if len(ts) < n {
		return template{}, nil, fmt.Errorf("bench: %d observations for a bundle of %d", len(ts), n)
	}
	ts = ts[:n]
	docs := make([][]byte, n)
	for i, t := range ts {
		docs[i] = t.body
	}
	bundle, err := simulator.NewBundle("batch", docs, rand.Reader)
	if err != nil {
		return template{}, nil, err
	}
	return newTemplate(bundle), ts, nil
}
