package mllp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/hl7v2"
)

// Defaults for Config.
const (
	DefaultMaxFrameBytes    = 1 << 20
	DefaultReadTimeout      = 30 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultWriteTimeout     = 30 * time.Second
	DefaultHandshakeTimeout = guard.DefaultHandshakeTimeout
	DefaultHandlerTimeout   = 60 * time.Second
	DefaultMaxConns         = 256
	DefaultMaxConnsPerIP    = 16
	DefaultMaxHandshakes    = 128
	DefaultHandshakesPerIP  = guard.DefaultHandshakesPerIP
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("mllp: server closed")

// ConnInfo describes the connection a frame arrived on.
type ConnInfo struct {
	RemoteAddr net.Addr
	// TLS is the connection state after the completed handshake (PeerCertificates holds the
	// client's verified chain when the tls.Config requires client certificates); nil on a
	// plaintext connection (only with Config.AllowPlaintext).
	TLS *tls.ConnectionState
	// DeviceID is the device the Authorizer found for the client certificate, for this
	// message (empty without an Authorizer).
	DeviceID string
}

// Handler handles one MLLP frame and returns the acknowledgement to send back (an
// ER7-encoded ACK, unframed), or nil to send nothing. ctx ends at Config.HandlerTimeout or
// when the server is forcibly closed. The payload is the handler's to keep.
type Handler interface {
	HandleMLLP(ctx context.Context, conn ConnInfo, payload []byte) []byte
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, conn ConnInfo, payload []byte) []byte

// HandleMLLP calls f.
func (f HandlerFunc) HandleMLLP(ctx context.Context, conn ConnInfo, payload []byte) []byte {
	return f(ctx, conn, payload)
}

// Authorizer decides whether the holder of a verified client certificate may act now
// (registry.Service.Authorize). Errors: EUNAUTHORIZED, EUNAVAILABLE.
type Authorizer interface {
	Authorize(ctx context.Context, cert *x509.Certificate) (string, error)
}

// Config configures a Server. A zero field takes its default (see the Default constants).
type Config struct {
	MaxFrameBytes    int           // largest payload accepted; larger frames get an AR ACK
	ReadTimeout      time.Duration // from a frame's start block to its end
	IdleTimeout      time.Duration // waiting for the next frame; the connection is closed after it
	WriteTimeout     time.Duration // writing one ACK
	HandshakeTimeout time.Duration // completing the TLS handshake
	HandlerTimeout   time.Duration // deadline of the Handler's context
	MaxConns         int           // connections past their TLS handshake, in total; more are closed at once
	MaxConnsPerIP    int           // connections past their TLS handshake, per remote IP; more are closed at once
	// MaxHandshakes and MaxHandshakesPerIP bound connections still in their TLS handshake
	// (not yet authenticated), apart from MaxConns: at the limit a new connection closes the
	// oldest one in handshake (of its address, or of all), so idle sockets cannot keep a
	// device with a valid certificate out (see guard.HandshakeLimits).
	MaxHandshakes      int
	MaxHandshakesPerIP int
	// AllowPlaintext accepts connections that are not *tls.Conn (tests, or TLS terminated in
	// front). By default they are closed at once.
	AllowPlaintext bool
	// Authorizer, if set, decides before every message whether the connection's client
	// certificate may still act (revocation, expiry, device state): on a refusal the message
	// is answered AR and the connection closed.
	Authorizer Authorizer
	Logger     *slog.Logger     // default: discard
	Now        func() time.Time // default time.Now; for the ACKs the server builds itself
	Rand       io.Reader        // default crypto/rand.Reader; for those ACKs' control ids
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.HandlerTimeout, DefaultHandlerTimeout)
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = min(DefaultMaxConnsPerIP, c.MaxConns)
	}
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.MaxHandshakesPerIP == 0 {
		c.MaxHandshakesPerIP = min(DefaultHandshakesPerIP, c.MaxHandshakes)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

// Validate checks c (with defaults for zero fields): no negative limits or timeouts, frames
// of at most 64 MiB, and no more connections (or handshakes) per IP than in total. It returns an EINVALID
// *vitalgate.Error naming the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(field, msg string) error {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "mllp.Config."+field, "%s", msg)
	}
	switch {
	case c.MaxFrameBytes < 0 || c.MaxFrameBytes > 64<<20:
		return bad("MaxFrameBytes", "must be between 1 byte and 64 MiB")
	case c.ReadTimeout < 0:
		return bad("ReadTimeout", "must not be negative")
	case c.IdleTimeout < 0:
		return bad("IdleTimeout", "must not be negative")
	case c.WriteTimeout < 0:
		return bad("WriteTimeout", "must not be negative")
	case c.HandshakeTimeout < 0:
		return bad("HandshakeTimeout", "must not be negative")
	case c.HandlerTimeout < 0:
		return bad("HandlerTimeout", "must not be negative")
	case c.MaxConns < 0:
		return bad("MaxConns", "must not be negative")
	case c.MaxConnsPerIP < 0 || c.MaxConnsPerIP > c.MaxConns:
		return bad("MaxConnsPerIP", "must be between 1 and MaxConns")
	case c.MaxHandshakes < 0:
		return bad("MaxHandshakes", "must not be negative")
	case c.MaxHandshakesPerIP < 0 || c.MaxHandshakesPerIP > c.MaxHandshakes:
		return bad("MaxHandshakesPerIP", "must be between 1 and MaxHandshakes")
	}
	return nil
}

// Server serves MLLP connections. Create it with NewServer.
type Server struct {
	cfg     Config
	h       Handler
	baseCtx context.Context
	cancel  context.CancelFunc

	hs          *guard.Handshakes  // connections in their TLS handshake
	hsCtx       context.Context    // ends at Shutdown or Close: handshakes are aborted
	hsCancel    context.CancelFunc //
	handshaking atomic.Int64       // goroutines in the handshake stage

	closing   atomic.Bool
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	perIP     map[string]int
}

type conn struct {
	c    net.Conn
	ip   string
	mu   sync.Mutex
	busy bool // reading a frame or handling it: Shutdown lets it finish
}

// NewServer returns a Server that calls h for every frame. It returns the error of
// cfg.Validate.
func NewServer(cfg Config, h Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, vitalgate.FieldErrorf(vitalgate.EINVALID, "handler", "a handler is required")
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	hsCtx, hsCancel := context.WithCancel(ctx)
	hs := guard.NewHandshakes(guard.HandshakeLimits{Total: cfg.MaxHandshakes, PerIP: cfg.MaxHandshakesPerIP, Timeout: cfg.HandshakeTimeout}, nil)
	return &Server{cfg: cfg, h: h, baseCtx: ctx, cancel: cancel, hs: hs, hsCtx: hsCtx, hsCancel: hsCancel,
		listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}, perIP: map[string]int{}}, nil
}

// Serve accepts connections on l until Shutdown or Close, and then returns
// ErrServerClosed; it returns other errors of l.Accept that are not transient. It closes l
// when it returns.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		_ = l.Close()
	}()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Transient (EMFILE, ECONNABORTED ...): back off and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Logger.Warn("mllp: accept failed; retrying", "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc, ok := c.(*tls.Conn); ok {
			s.handshaking.Add(1)
			go s.handshake(tc)
			continue
		}
		cn, ok := s.admit(c)
		if !ok {
			_ = c.Close()
			continue
		}
		go s.serveConn(cn)
	}
}

// handshake completes a TLS handshake within the handshake budget, and only then gives the
// connection one of the MaxConns slots (so slots hold authenticated devices only).
func (s *Server) handshake(tc *tls.Conn) {
	defer s.handshaking.Add(-1)
	if err := s.hs.Handshake(s.hsCtx, tc); err != nil {
		if !s.closing.Load() {
			s.cfg.Logger.Info("mllp: TLS handshake failed", "remote", tc.RemoteAddr().String(), "err", err)
		}
		_ = tc.Close()
		return
	}
	cn, ok := s.admit(tc)
	if !ok {
		_ = tc.Close()
		return
	}
	s.serveConn(cn)
}

func remoteIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func (s *Server) admit(c net.Conn) (*conn, bool) {
	ip := remoteIP(c.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing.Load():
		return nil, false
	case len(s.conns) >= s.cfg.MaxConns:
		s.cfg.Logger.Warn("mllp: connection limit reached", "remote", ip)
		return nil, false
	case s.perIP[ip] >= s.cfg.MaxConnsPerIP:
		s.cfg.Logger.Warn("mllp: per-IP connection limit reached", "remote", ip)
		return nil, false
	}
	cn := &conn{c: c, ip: ip}
	s.conns[cn] = struct{}{}
	s.perIP[ip]++
	return cn, true
}

func (s *Server) release(cn *conn) {
	_ = cn.c.Close()
	s.mu.Lock()
	delete(s.conns, cn)
	if s.perIP[cn.ip]--; s.perIP[cn.ip] <= 0 {
		delete(s.perIP, cn.ip)
	}
	s.mu.Unlock()
}

func (s *Server) serveConn(cn *conn) {
	defer s.release(cn)
	log := s.cfg.Logger.With("remote", cn.c.RemoteAddr().String())
	info := ConnInfo{RemoteAddr: cn.c.RemoteAddr()}
	if tc, ok := cn.c.(*tls.Conn); ok { // the handshake is done (see handshake)
		st := tc.ConnectionState()
		info.TLS = &st
	} else if !s.cfg.AllowPlaintext {
		log.Warn("mllp: plaintext connection refused")
		return
	}
	r := NewReader(cn.c, s.cfg.MaxFrameBytes)
	r.onStart = func() {
		cn.mu.Lock()
		cn.busy = true
		_ = cn.c.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
		cn.mu.Unlock()
	}
	for {
		cn.mu.Lock()
		if s.closing.Load() {
			cn.mu.Unlock()
			return
		}
		cn.busy = false
		_ = cn.c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		cn.mu.Unlock()

		payload, err := r.ReadFrame()
		var ack []byte
		switch {
		case errors.Is(err, ErrFrameTooLarge):
			log.Warn("mllp: frame too large", "max", s.cfg.MaxFrameBytes)
			ack, _ = errorACK(s.baseCtx, log, nil, vitalgate.Errorf(vitalgate.ETOOLARGE, "message is larger than %d bytes", s.cfg.MaxFrameBytes), nil, s.cfg.Now(), s.controlID())
		case errors.Is(err, ErrFraming):
			log.Warn("mllp: malformed frame dropped")
			continue
		case err != nil:
			if !errors.Is(err, io.EOF) && !s.closing.Load() {
				log.Info("mllp: connection closed", "err", err, "discarded", r.Discarded())
			}
			return
		default:
			id, err := s.authorize(info)
			if err != nil {
				log.Info("mllp: certificate no longer authorized; closing", "err", vitalgate.ErrorMessage(err))
				ack, _ := errorACK(s.baseCtx, log, parseHeader(payload), err, nil, s.cfg.Now(), s.controlID())
				_ = cn.c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
				_ = WriteFrame(cn.c, ack)
				return
			}
			info.DeviceID = id
			ack = s.handle(log, info, payload)
		}
		if ack == nil {
			continue
		}
		_ = cn.c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if err := WriteFrame(cn.c, ack); err != nil {
			log.Info("mllp: writing ACK failed", "err", err)
			return
		}
	}
}

// authorize asks the Authorizer about the connection's client certificate, per message, and
// returns the device id.
func (s *Server) authorize(info ConnInfo) (string, error) {
	if s.cfg.Authorizer == nil || info.TLS == nil || len(info.TLS.PeerCertificates) == 0 {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.HandlerTimeout)
	defer cancel()
	return s.cfg.Authorizer.Authorize(ctx, info.TLS.PeerCertificates[0])
}

// parseHeader returns the parsed message for the ACK's MSA-2, or nil.
func parseHeader(payload []byte) *hl7v2.Message {
	m, err := hl7v2.Parse(payload, hl7v2.Limits{})
	if err != nil {
		return nil
	}
	return m
}

func (s *Server) handle(log *slog.Logger, info ConnInfo, payload []byte) (ack []byte) {
	ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.HandlerTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			ack, _ = errorACK(ctx, log, nil, vitalgate.Internal(fmt.Errorf("panic: %v", p), "mllp handler"), nil, s.cfg.Now(), s.controlID())
		}
	}()
	return s.h.HandleMLLP(ctx, info, payload)
}

func (s *Server) controlID() string {
	var b [10]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return "VG" + s.cfg.Now().UTC().Format("20060102150405.000000000")
	}
	return "VG" + hex.EncodeToString(b[:])
}

// Shutdown stops the server gracefully: it closes the listeners, closes idle connections,
// lets connections that are reading or handling a frame finish it and send its ACK, and
// waits for them to close. If ctx ends first, it closes the remaining connections, cancels
// the handlers' contexts and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	s.hsCancel()
	for l := range s.listeners {
		_ = l.Close()
	}
	for cn := range s.conns {
		cn.mu.Lock()
		if !cn.busy {
			_ = cn.c.SetReadDeadline(time.Unix(1, 0))
		}
		cn.mu.Unlock()
	}
	s.mu.Unlock()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 && s.handshaking.Load() == 0 {
			s.cancel()
			return nil
		}
		select {
		case <-ctx.Done():
			_ = s.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close stops the server at once: it closes the listeners and all connections and cancels
// the handlers' contexts.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.hsCancel()
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		_ = l.Close()
	}
	for cn := range s.conns {
		_ = cn.c.Close()
	}
	return nil
}
