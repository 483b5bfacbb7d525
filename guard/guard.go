// Package guard contains abuse: per-key token-bucket rate limits, per-key concurrency limits,
// listeners that bound connections in total and per client address, and a budget of its own
// for connections still in their TLS handshake (so unauthenticated sockets cannot take the
// places of authenticated devices). It is transport neutral: the HTTPS and MLLP listeners
// both use it.
package guard

import (
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a set of token buckets, one per key (a principal or a client address), each
// refilling at Rate per second up to Burst. Idle buckets are forgotten, so memory stays
// bounded by the number of keys active within the idle window, capped at MaxKeys.
type Limiter struct {
	rate    rate.Limit
	burst   int
	maxKeys int
	idle    time.Duration
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewLimiter returns a Limiter allowing perSecond events per key with bursts of burst.
// now may be nil for the real clock.
func NewLimiter(perSecond float64, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{rate: rate.Limit(perSecond), burst: burst, maxKeys: 100000, idle: 10 * time.Minute,
		now: now, buckets: make(map[string]*bucket)}
}

// SetRate changes the rate and burst of every bucket, present and future (for example when
// a deployment-wide limit is shared out between a changing number of nodes).
func (l *Limiter) SetRate(perSecond float64, burst int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if rate.Limit(perSecond) == l.rate && burst == l.burst {
		return
	}
	l.rate, l.burst = rate.Limit(perSecond), burst
	for _, b := range l.buckets {
		b.lim.SetLimitAt(now, l.rate)
		b.lim.SetBurstAt(now, burst)
	}
}

// Allow takes one token from key's bucket. When the bucket is empty it returns false and
// how long until a token is available (for a Retry-After header).
func (l *Limiter) Allow(key string) (bool, time.Duration) { return l.AllowN(key, 1) }

// AllowN takes n tokens from key's bucket, all or none (for example one per observation of
// an HL7 message). n above the burst counts as the burst, so that a large request needs a
// full bucket rather than being refused for ever.
func (l *Limiter) AllowN(key string, n int) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute || len(l.buckets) >= l.maxKeys {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > l.idle {
				delete(l.buckets, k)
			}
		}
		if len(l.buckets) >= l.maxKeys {
			clear(l.buckets) // under a flood of distinct keys, forget rather than grow
		}
		l.sweep = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, max(1, min(n, l.burst)))
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// RetryAfterSeconds rounds a wait up to whole seconds, at least 1, for Retry-After.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// Concurrency bounds how many operations run at once per key.
type Concurrency struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewConcurrency returns a limit of max concurrent operations per key.
func NewConcurrency(max int) *Concurrency {
	return &Concurrency{max: max, n: make(map[string]int)}
}

// Acquire starts an operation for key; it returns false (and takes nothing) at the limit.
// Every successful Acquire must be followed by Release.
func (c *Concurrency) Acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= c.max {
		return false
	}
	c.n[key]++
	return true
}

// Release ends an operation started by Acquire.
func (c *Concurrency) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] <= 1 {
		delete(c.n, key)
	} else {
		c.n[key]--
	}
}

// InFlight returns the number of operations running for key.
func (c *Concurrency) InFlight(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// ConnLimits bounds accepted connections.
type ConnLimits struct {
	Total int // connections open at once, all addresses together
	PerIP int // connections open at once from one client address
}

// Listener wraps a net.Listener: a connection over either limit is closed at once, before
// any TLS handshake, so a flood of connections costs the server almost nothing. For TLS
// listeners, prefer [TLSListener], which counts connections in handshake apart.
type Listener struct {
	net.Listener
	slots    *slots
	rejected func(reason string)
}

// NewListener wraps ln with limits. rejected, if not nil, is called with "total" or
// "per_ip" for each refused connection (for metrics).
func NewListener(ln net.Listener, lim ConnLimits, rejected func(reason string)) *Listener {
	return &Listener{Listener: ln, slots: newSlots(lim), rejected: rejected}
}

// Accept returns the next connection within the limits.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		if reason := l.slots.take(ip); reason != "" {
			_ = c.Close()
			if l.rejected != nil {
				l.rejected(reason)
			}
			continue
		}
		gc := &conn{Conn: c, ip: ip}
		gc.l.Store(l.slots)
		return gc, nil
	}
}

// Open returns the number of connections open now.
func (l *Listener) Open() int { return l.slots.open() }

// slots counts open connections in total and per address within ConnLimits.
type slots struct {
	lim   ConnLimits
	mu    sync.Mutex
	total int
	perIP map[string]int
}

func newSlots(lim ConnLimits) *slots { return &slots{lim: lim, perIP: make(map[string]int)} }

// take takes a place for ip, or returns why not ("total" or "per_ip").
func (s *slots) take(ip string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.lim.Total > 0 && s.total >= s.lim.Total:
		return "total"
	case s.lim.PerIP > 0 && s.perIP[ip] >= s.lim.PerIP:
		return "per_ip"
	}
	s.total++
	s.perIP[ip]++
	return ""
}

func (s *slots) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

func (s *slots) release(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.perIP[ip] <= 1 {
		delete(s.perIP, ip)
	} else {
		s.perIP[ip]--
	}
}

// conn gives its place back to l (if it holds one) when closed.
type conn struct {
	net.Conn
	l    atomic.Pointer[slots]
	ip   string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	if l := c.l.Load(); l != nil {
		c.once.Do(func() { l.release(c.ip) })
	}
	return err
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
