// Package metrics holds Vitalgate's Prometheus metrics and serves them on their own
// loopback-only listener, apart from the API. Labels never carry identifiers of patients,
// devices or clients: only routes, status codes and reasons.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the collectors the transports update.
type Metrics struct {
	Registry *prometheus.Registry

	Requests         *prometheus.CounterVec   // by route and status code
	Latency          *prometheus.HistogramVec // by route
	Rejects          *prometheus.CounterVec   // by reason: rate_limit, auth_rate_limit, concurrency, shed, conn_total, conn_per_ip, too_large
	InFlight         prometheus.Gauge         // requests being served
	WriteQueue       prometheus.Gauge         // writes waiting for or in a commit
	DevicesConnected prometheus.Gauge         // open connections authenticated by a device certificate
	MLLPMessages     *prometheus.CounterVec   // by ACK code
}

// New returns the metrics registered in a fresh registry (with Go runtime and process
// collectors). devicesEnrolled, if not nil, is read at scrape time.
func New(devicesEnrolled func() float64) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vitalgate_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vitalgate_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		Rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vitalgate_rejects_total", Help: "Requests and connections refused by the abuse guards, by reason.",
		}, []string{"reason"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vitalgate_http_in_flight_requests", Help: "HTTP requests being served.",
		}),
		WriteQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vitalgate_write_queue_depth", Help: "Write requests waiting for or in a commit.",
		}),
		DevicesConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vitalgate_devices_connected", Help: "Open connections authenticated by a device certificate.",
		}),
		MLLPMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vitalgate_mllp_messages_total", Help: "HL7 v2 messages over MLLP by acknowledgement code.",
		}, []string{"ack"}),
	}
	r.MustRegister(m.Requests, m.Latency, m.Rejects, m.InFlight, m.WriteQueue, m.DevicesConnected, m.MLLPMessages,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if devicesEnrolled != nil {
		r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vitalgate_devices_enrolled", Help: "Registered, active devices that have enrolled.",
		}, devicesEnrolled))
	}
	return m
}

// Reject counts a refusal by reason.
func (m *Metrics) Reject(reason string) {
	if m != nil {
		m.Rejects.WithLabelValues(reason).Inc()
	}
}

// Serve serves /metrics on addr until ctx is done. addr must be a loopback address: metrics
// describe the deployment and are not for the network.
func (m *Metrics) Serve(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("metrics address %q is not a loopback address; scrape through a local agent or a tunnel", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
