package bench

import "sync/atomic"

// FillTemplate exposes the body templates to the external tests: body with its identifier
// slots filled from seq, and how many slots it has.
func FillTemplate(body []byte, seq *atomic.Uint64) ([]byte, int) {
	t := newTemplate(body)
	return t.fill(seq), t.identifiers()
}

// SlotMark is the identifier placeholder of body templates.
const SlotMark = slotMark

// Median exposes median.
var Median = median

// SinceID exposes sinceID.
var SinceID = sinceID
