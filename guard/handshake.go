package guard

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// HandshakeLimits bounds connections that are accepted but have not finished their TLS
// handshake: the stage before a device has shown its certificate. They have a budget of
// their own, apart from the connections past the handshake ([ConnLimits]), so idle sockets
// cannot take the slots authenticated devices need.
type HandshakeLimits struct {
	// Total is the number of connections in handshake at once, all addresses together. When
	// it is reached, a new connection closes the oldest one in handshake (a flood of idle
	// sockets ages out; a device's handshake takes milliseconds).
	Total int
	// PerIP is the number of connections in handshake at once from one address; a new one
	// over it closes that address's oldest one in handshake.
	PerIP int
	// Timeout is the time a connection has to finish its handshake.
	Timeout time.Duration
}

// Defaults of HandshakeLimits fields that are zero.
const (
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultHandshakesPerIP  = 32
	DefaultHandshakes       = 512
)

func (l HandshakeLimits) withDefaults() HandshakeLimits {
	if l.Total <= 0 {
		l.Total = DefaultHandshakes
	}
	if l.PerIP <= 0 {
		l.PerIP = min(DefaultHandshakesPerIP, l.Total)
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultHandshakeTimeout
	}
	return l
}

// ErrHandshakeEvicted is the error of a handshake closed to make room for a newer
// connection (see [HandshakeLimits]).
var ErrHandshakeEvicted = errors.New("guard: TLS handshake closed to make room for a newer connection")

// Handshakes is the budget of connections in their TLS handshake. It is safe for
// concurrent use; one Handshakes serves one listener.
type Handshakes struct {
	lim      HandshakeLimits
	rejected func(reason string)

	mu    sync.Mutex
	all   *list.List            // of *pending, oldest first
	perIP map[string]*list.List // of *pending, oldest first
}

type pending struct {
	ip        string
	cancel    context.CancelCauseFunc
	inAll     *list.Element
	inIP      *list.Element
	abandoned bool
}

// NewHandshakes returns a handshake budget; zero fields of lim take the Default values.
// rejected, if not nil, is called with "handshake_total" or "handshake_per_ip" for each
// connection closed to make room, and with "handshake_timeout" for each handshake that did
// not finish in time (for metrics).
func NewHandshakes(lim HandshakeLimits, rejected func(reason string)) *Handshakes {
	if rejected == nil {
		rejected = func(string) {}
	}
	return &Handshakes{lim: lim.withDefaults(), rejected: rejected, all: list.New(), perIP: make(map[string]*list.List)}
}

// Limits returns the limits in force (defaults filled in).
func (h *Handshakes) Limits() HandshakeLimits { return h.lim }

// InHandshake returns the number of connections in handshake now.
func (h *Handshakes) InHandshake() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.all.Len()
}

// Handshake runs tc's server handshake within the budget: it takes a place (closing the
// oldest handshake of the same address, or of all, when a limit is reached), sets the
// deadline, and gives the place back when the handshake ends. It returns nil when the
// handshake finished (the connection's deadline is then cleared), and otherwise the error,
// which is [ErrHandshakeEvicted] for a connection closed to make room. ctx ending aborts the
// handshake. The caller closes tc when Handshake fails.
func (h *Handshakes) Handshake(ctx context.Context, tc *tls.Conn) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p := h.begin(hostOf(tc.RemoteAddr()), cancel)
	defer h.end(p)
	deadline := time.Now().Add(h.lim.Timeout)
	_ = tc.SetDeadline(deadline)
	hctx, hcancel := context.WithDeadline(ctx, deadline)
	err := tc.HandshakeContext(hctx)
	hcancel()
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrHandshakeEvicted) {
			return ErrHandshakeEvicted
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			h.rejected("handshake_timeout")
		}
		return err
	}
	_ = tc.SetDeadline(time.Time{})
	return nil
}

func (h *Handshakes) begin(ip string, cancel context.CancelCauseFunc) *pending {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.perIP[ip]
	if q == nil {
		q = list.New()
		h.perIP[ip] = q
	}
	if q.Len() >= h.lim.PerIP {
		h.evict(q.Front().Value.(*pending), "handshake_per_ip")
	} else if h.all.Len() >= h.lim.Total {
		h.evict(h.all.Front().Value.(*pending), "handshake_total")
	}
	p := &pending{ip: ip, cancel: cancel}
	p.inAll = h.all.PushBack(p)
	p.inIP = q.PushBack(p)
	return p
}

// evict removes p from the budget and aborts its handshake. h.mu is held.
func (h *Handshakes) evict(p *pending, reason string) {
	h.remove(p)
	p.cancel(ErrHandshakeEvicted)
	h.rejected(reason)
}

func (h *Handshakes) end(p *pending) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !p.abandoned {
		h.remove(p)
	}
}

// remove takes p out of the lists. h.mu is held.
func (h *Handshakes) remove(p *pending) {
	p.abandoned = true
	h.all.Remove(p.inAll)
	if q := h.perIP[p.ip]; q != nil {
		q.Remove(p.inIP)
		if q.Len() == 0 {
			delete(h.perIP, p.ip)
		}
	}
}

// TLSListener accepts connections, completes their TLS handshake within a [Handshakes]
// budget, and returns only connections whose handshake finished, each within [ConnLimits]
// (which therefore count connections past the handshake only). Accept returns *tls.Conn,
// as tls.NewListener does, with the handshake already done.
type TLSListener struct {
	ln       net.Listener
	config   *tls.Config
	hs       *Handshakes
	slots    *slots
	rejected func(reason string)

	ctx    context.Context
	cancel context.CancelFunc
	start  sync.Once
	ready  chan net.Conn
	errc   chan error
	closed atomic.Bool
}

// NewTLSListener wraps ln: connections get their TLS handshake (config) within hs, then a
// place within conns. rejected, if not nil, is called with "total" or "per_ip" for each
// handshaken connection refused by conns (hs reports its own refusals).
func NewTLSListener(ln net.Listener, config *tls.Config, hs *Handshakes, conns ConnLimits, rejected func(reason string)) *TLSListener {
	if rejected == nil {
		rejected = func(string) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &TLSListener{ln: ln, config: config, hs: hs, slots: newSlots(conns), rejected: rejected,
		ctx: ctx, cancel: cancel, ready: make(chan net.Conn), errc: make(chan error, 1)}
}

// Accept returns the next connection whose handshake finished within the limits.
func (l *TLSListener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errc:
		l.errc <- err // every later Accept returns it too
		return nil, err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

func (l *TLSListener) acceptLoop() {
	var backoff time.Duration
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				l.errc <- net.ErrClosed
				return
			}
			// Transient (EMFILE, ECONNABORTED ...): back off and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
			case <-l.ctx.Done():
				l.errc <- net.ErrClosed
				return
			}
			continue
		}
		backoff = 0
		go l.handshake(raw)
	}
}

func (l *TLSListener) handshake(raw net.Conn) {
	ip := hostOf(raw.RemoteAddr())
	sc := &conn{Conn: raw, ip: ip}
	tc := tls.Server(sc, l.config)
	if err := l.hs.Handshake(l.ctx, tc); err != nil {
		_ = raw.Close()
		return
	}
	if reason := l.slots.take(ip); reason != "" {
		_ = raw.Close()
		l.rejected(reason)
		return
	}
	sc.l.Store(l.slots)
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		_ = tc.Close()
	}
}

// Close stops accepting, aborts handshakes in progress and closes the underlying listener.
// Connections already returned by Accept stay open.
func (l *TLSListener) Close() error {
	l.closed.Store(true)
	l.cancel()
	return l.ln.Close()
}

// Addr returns the underlying listener's address.
func (l *TLSListener) Addr() net.Addr { return l.ln.Addr() }

// Open returns the number of connections past their handshake open now.
func (l *TLSListener) Open() int { return l.slots.open() }

// InHandshake returns the number of connections in handshake now.
func (l *TLSListener) InHandshake() int { return l.hs.InHandshake() }
