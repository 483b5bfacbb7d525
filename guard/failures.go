package guard

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// DefaultMaxTracked bounds the (principal, source) pairs a Failures remembers.
const DefaultMaxTracked = 100000

// Failures slows down credential guessing: after Max failed authentications of one principal
// from one source address within a window, further attempts of that pair are refused until
// the window has passed. The key is the pair, never the principal alone: failures from one
// address never lock the same principal out from another, so nobody can lock out a client or
// a device by failing on purpose. A success forgets the pair's failures.
//
// Memory is bounded: at most MaxTracked pairs are remembered; beyond that the pair that
// failed least recently is forgotten first. Time comes from the injected clock and only
// durations between its readings are used, so a clock with a monotonic reading (time.Now) is
// immune to wall-clock steps; a clock that goes backwards restarts the window, it never
// lifts a lockout early.
//
// The HTTPS token endpoint and EST enrollment both use it, through the three methods Allow,
// Fail and Succeed.
type Failures struct {
	mu         sync.Mutex
	max        int
	window     time.Duration
	maxTracked int
	now        func() time.Time
	pairs      map[string]*list.Element
	order      *list.List // of *failure, least recently failed at the front
}

type failure struct {
	key   string
	count int
	start time.Time // the first failure of the current window
}

// NewFailures returns a Failures allowing n failures per (principal, source) within window.
// now may be nil for the real clock.
func NewFailures(n int, window time.Duration, now func() time.Time) *Failures {
	if now == nil {
		now = time.Now
	}
	return &Failures{max: max(n, 1), window: window, maxTracked: DefaultMaxTracked, now: now,
		pairs: make(map[string]*list.Element), order: list.New()}
}

// SetMax changes the failures allowed per pair and window (for example the share of one node
// in a deployment of several).
func (f *Failures) SetMax(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.max = max(n, 1)
}

// SetMaxTracked changes how many pairs are remembered at most.
func (f *Failures) SetMaxTracked(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maxTracked = max(n, 1)
	for f.order.Len() > f.maxTracked {
		f.remove(f.order.Front())
	}
}

// Tracked returns the number of pairs remembered.
func (f *Failures) Tracked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.order.Len()
}

// pairKey joins principal and source into one key; long principals (chosen by the caller,
// not the server) are hashed so that a key's size stays bounded.
func pairKey(principal, source string) string {
	if len(principal) > 256 {
		sum := sha256.Sum256([]byte(principal))
		principal = "sha256:" + hex.EncodeToString(sum[:])
	}
	if len(source) > 64 {
		source = source[:64]
	}
	return principal + "\x00" + source
}

// current returns the pair's record if its window is still open, forgetting it otherwise.
func (f *Failures) current(key string, now time.Time) *failure {
	el, ok := f.pairs[key]
	if !ok {
		return nil
	}
	fl := el.Value.(*failure)
	elapsed := now.Sub(fl.start)
	if elapsed < 0 {
		fl.start = now // the clock went backwards: restart the window, keep the count
		return fl
	}
	if elapsed >= f.window {
		f.remove(el)
		return nil
	}
	return fl
}

func (f *Failures) remove(el *list.Element) {
	delete(f.pairs, el.Value.(*failure).key)
	f.order.Remove(el)
}

// Allow reports whether principal may try to authenticate from source now, and if not, how
// long until it may.
func (f *Failures) Allow(principal, source string) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	fl := f.current(pairKey(principal, source), now)
	if fl == nil || fl.count < f.max {
		return true, 0
	}
	return false, f.window - now.Sub(fl.start)
}

// Fail records a failed authentication of principal from source.
func (f *Failures) Fail(principal, source string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	key := pairKey(principal, source)
	if fl := f.current(key, now); fl != nil {
		fl.count++
		f.order.MoveToBack(f.pairs[key])
		return
	}
	for f.order.Len() >= f.maxTracked {
		f.remove(f.order.Front())
	}
	f.pairs[key] = f.order.PushBack(&failure{key: key, count: 1, start: now})
}

// Succeed records a successful authentication of principal from source: the pair's failures
// are forgotten.
func (f *Failures) Succeed(principal, source string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if el, ok := f.pairs[pairKey(principal, source)]; ok {
		f.remove(el)
	}
}
