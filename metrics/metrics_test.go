package metrics_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/metrics"
)

func TestServeLoopbackOnly(t *testing.T) {
	m := metrics.New(func() float64 { return 3 })
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:9464", "example.org:9464"} {
		if err := m.Serve(context.Background(), addr); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Serve(%q) = %v, want a refusal: metrics are not for the network", addr, err)
		}
	}
}

func TestServeMetrics(t *testing.T) {
	m := metrics.New(func() float64 { return 3 })
	m.Requests.WithLabelValues("POST /fhir/Observation", "201").Inc()
	m.Reject("rate_limit")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, addr) }()
	var body string
	for i := 0; i < 50; i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`vitalgate_http_requests_total{code="201",route="POST /fhir/Observation"} 1`,
		`vitalgate_rejects_total{reason="rate_limit"} 1`,
		`vitalgate_devices_enrolled 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
