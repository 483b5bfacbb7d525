package guard

import "sync/atomic"

// Shedder is write load shedding: it bounds the writes in progress (waiting for or in a
// commit) across every transport that shares it, so that HTTPS and MLLP writes together
// cannot queue without bound behind the store. Over the bound a write is refused at once
// (the caller answers "busy, retry": HTTP 503, HL7 AR) instead of waiting.
//
// A nil *Shedder sheds nothing.
type Shedder struct {
	max      int64
	n        atomic.Int64
	onChange func(inFlight int64)
}

// NewShedder returns a Shedder that admits at most max writes at once. onChange, if not
// nil, is called with the number in progress whenever it changes (a metrics gauge).
func NewShedder(max int, onChange func(inFlight int64)) *Shedder {
	return &Shedder{max: int64(max), onChange: onChange}
}

// Acquire starts a write. It returns false, and takes nothing, when max writes are in
// progress already. Every successful Acquire must be followed by one Release.
func (s *Shedder) Acquire() bool {
	if s == nil {
		return true
	}
	n := s.n.Add(1)
	if n > s.max {
		s.n.Add(-1)
		return false
	}
	s.changed(n)
	return true
}

// Release ends a write started by Acquire.
func (s *Shedder) Release() {
	if s == nil {
		return
	}
	s.changed(s.n.Add(-1))
}

// InFlight returns the number of writes in progress.
func (s *Shedder) InFlight() int64 {
	if s == nil {
		return 0
	}
	return s.n.Load()
}

// Overloaded reports whether the writes in progress are at 90% of the bound or more (a
// readiness check says "not ready" then, so that a load balancer sends writes elsewhere).
func (s *Shedder) Overloaded() bool {
	return s != nil && s.n.Load() >= s.max*9/10
}

func (s *Shedder) changed(n int64) {
	if s.onChange != nil {
		s.onChange(n)
	}
}
