package httpapi

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/metrics"
)

// protection holds the abuse guards of the HTTPS listener (limits live in Config).
type protection struct {
	perIP      *guard.Limiter
	perCaller  *guard.Limiter
	inFlight   *guard.Concurrency
	writes     *guard.Shedder // shared with the MLLP listener (WriteShedder)
	metrics    *metrics.Metrics
	connMu     sync.Mutex
	deviceConn map[net.Conn]bool
}

func newProtection(cfg Config, m *metrics.Metrics, now func() time.Time) *protection {
	return &protection{
		perIP:     guard.NewLimiter(cfg.RatePerIP, cfg.BurstPerIP, now),
		perCaller: guard.NewLimiter(cfg.RatePerCaller, cfg.BurstPerCaller, now),
		inFlight:  guard.NewConcurrency(cfg.MaxInFlightPerCaller),
		writes: guard.NewShedder(cfg.MaxInFlightWrites, func(n int64) {
			if m != nil {
				m.WriteQueue.Set(float64(n))
			}
		}),
		metrics:    m,
		deviceConn: make(map[net.Conn]bool),
	}
}

// SetClusterSize shares the deployment-wide limits out between n nodes: each node enforces
// 1/n of the per-caller and per-address rates and bursts (the failed-authentication
// allowance belongs to the auth capability's limiter, shared out by the node), so that the limits hold for the deployment, not per node. Node counts come
// from the store's heartbeats (vitalgate.NodeStore).
func (s *Server) SetClusterSize(n int) {
	n = max(n, 1)
	share := func(v float64) float64 { return v / float64(n) }
	shareInt := func(v int) int { return max(1, (v+n-1)/n) }
	s.protect.perCaller.SetRate(share(s.cfg.RatePerCaller), shareInt(s.cfg.BurstPerCaller))
	s.protect.perIP.SetRate(share(s.cfg.RatePerIP), shareInt(s.cfg.BurstPerIP))
}

// throttled is the error for a caller over a rate limit.
func throttled(w http.ResponseWriter, wait time.Duration, what string) error {
	w.Header().Set("Retry-After", strconv.Itoa(guard.RetryAfterSeconds(wait)))
	return vitalgate.Errorf(vitalgate.ETHROTTLED, "too many requests %s; retry later", what)
}

// beforeAuth applies the per-address rate limit. Health routes are exempt so that a load
// balancer always learns the truth.
func (s *Server) beforeAuth(w http.ResponseWriter, r *http.Request, rt Route) error {
	if rt.Pattern == "/healthz" || rt.Pattern == "/readyz" {
		return nil
	}
	if ok, wait := s.protect.perIP.Allow(remoteIP(r)); !ok {
		s.protect.metrics.Reject("rate_limit_ip")
		return throttled(w, wait, "from this address")
	}
	return nil
}

// afterAuth applies the per-caller rate and concurrency limits and, for writes, load
// shedding. It returns a release function to call when the request is done.
func (s *Server) afterAuth(w http.ResponseWriter, p vitalgate.Principal, rt Route) (func(), error) {
	if p.Kind == "anonymous" {
		return func() {}, nil
	}
	key := p.Kind + ":" + p.ID
	if p.ID == "" {
		key = p.Kind + "@" + p.RemoteIP
	}
	if ok, wait := s.protect.perCaller.Allow(key); !ok {
		s.protect.metrics.Reject("rate_limit")
		return nil, throttled(w, wait, "from this client")
	}
	if !s.protect.inFlight.Acquire(key) {
		s.protect.metrics.Reject("concurrency")
		return nil, throttled(w, time.Second, "at once from this client")
	}
	release := func() { s.protect.inFlight.Release(key) }
	if rt.Method == "POST" || rt.Method == "PUT" {
		if !s.protect.writes.Acquire() {
			release()
			s.protect.metrics.Reject("shed")
			w.Header().Set("Retry-After", "1")
			return nil, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "the server is busy; retry in a moment")
		}
		inner := release
		release = func() { s.protect.writes.Release(); inner() }
	}
	return release, nil
}

// overloaded reports whether writes are near their limit (readiness says no then).
func (s *Server) overloaded() bool { return s.protect.writes.Overloaded() }

// WriteShedder returns the in-flight-writes bound (--max-inflight-writes) of this server,
// for the other transports of the node (MLLP) to count their writes in.
func (s *Server) WriteShedder() *guard.Shedder { return s.protect.writes }

// statusRecorder captures the status code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// observe records a request's route, status and latency.
func (s *Server) observe(route string, status int, start time.Time) {
	m := s.protect.metrics
	if m == nil {
		return
	}
	m.Requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.Latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
}

// connState tracks connections authenticated by a device certificate (metrics).
func (s *Server) connState(c net.Conn, st http.ConnState) {
	m := s.protect.metrics
	if m == nil {
		return
	}
	switch st {
	case http.StateActive:
		tc, ok := c.(*tls.Conn)
		if !ok {
			return
		}
		s.protect.connMu.Lock()
		if !s.protect.deviceConn[c] && len(tc.ConnectionState().PeerCertificates) > 0 {
			s.protect.deviceConn[c] = true
			m.DevicesConnected.Inc()
		}
		s.protect.connMu.Unlock()
	case http.StateClosed, http.StateHijacked:
		s.protect.connMu.Lock()
		if s.protect.deviceConn[c] {
			delete(s.protect.deviceConn, c)
			m.DevicesConnected.Dec()
		}
		s.protect.connMu.Unlock()
	}
}
