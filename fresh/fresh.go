// Package fresh gives every node decisions that are never older than one stated bound: a
// cache of what a decision is made from (a device, a certificate record, later a client or a
// quarantine flag), each entry reused for at most MaxAge after the read that filled it began.
//
// It is the one mechanism by which a change made on any node (a revocation, a reassignment,
// and later a quarantine or a disabled client) takes effect on every node: a decision taken
// at time d uses facts read no earlier than d-MaxAge, so a change committed at c is seen by
// every decision from c+MaxAge on, on every node, per request and per HL7 message.
//
// Why a bounded-age cache and not a change counter polled by each node: the store stays the
// only source of truth and needs no new table, trigger or write in every capability's
// transactions; a node that misses a poll, restarts or loses its database connection cannot
// serve stale decisions for longer than the bound, because an entry's age, not a signal,
// ends it (a counter needs its own timeout to give the same guarantee, and then it is this
// plus a counter); both stores and any number of nodes behave the same. The cost is at most
// one store read per key per bound per node, which at the default 2 s is small beside the
// requests it serves. The node that makes a change also forgets the entry at once (Forget),
// so on that node the change is immediate.
//
// Faults (EUNAVAILABLE, EINTERNAL, a cancelled context) are never cached: the next caller
// asks the store again.
package fresh

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
)

// DefaultMaxAge is the bound used when none is configured.
const DefaultMaxAge = 2 * time.Second

// MaxEntries bounds the memory of a Cache; when it is full, it starts afresh.
const MaxEntries = 100000

// Cache holds values of type V by key K, each for at most MaxAge. It is safe for concurrent
// use.
type Cache[K comparable, V any] struct {
	maxAge time.Duration
	now    func() time.Time

	mu sync.Mutex
	m  map[K]entry[V]
}

type entry[V any] struct {
	v      V
	err    error
	loaded time.Time // when the read that produced v began
}

// New returns a Cache whose entries are reused for less than maxAge (0: never reused) by the
// clock now (time.Now when nil).
func New[K comparable, V any](maxAge time.Duration, now func() time.Time) *Cache[K, V] {
	if now == nil {
		now = time.Now
	}
	return &Cache[K, V]{maxAge: max(maxAge, 0), now: now, m: make(map[K]entry[V])}
}

// MaxAge returns the bound.
func (c *Cache[K, V]) MaxAge() time.Duration { return c.maxAge }

// Get returns the value for key: the cached one if it was read less than MaxAge ago,
// otherwise the result of load (cached unless it is a fault). Answers that are decisions,
// such as ENOTFOUND, are cached like values.
func (c *Cache[K, V]) Get(ctx context.Context, key K, load func(ctx context.Context) (V, error)) (V, error) {
	start := c.now()
	if c.maxAge > 0 {
		c.mu.Lock()
		e, ok := c.m[key]
		c.mu.Unlock()
		if ok && !start.Before(e.loaded) && start.Sub(e.loaded) < c.maxAge {
			return e.v, e.err
		}
	}
	v, err := load(ctx)
	if c.maxAge > 0 && !fault(err) {
		c.mu.Lock()
		if len(c.m) >= MaxEntries {
			clear(c.m)
		}
		c.m[key] = entry[V]{v: v, err: err, loaded: start}
		c.mu.Unlock()
	}
	return v, err
}

// Forget drops the entry for key, so the next Get reads afresh (the node that makes a
// change calls it).
func (c *Cache[K, V]) Forget(key K) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

func fault(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch vitalgate.ErrorCode(err) {
	case vitalgate.EUNAVAILABLE, vitalgate.EINTERNAL:
		return true
	}
	return false
}
