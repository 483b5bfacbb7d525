package httpapi_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/httpapi"
)

// p99 returns the 99th percentile of ds.
func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

// TestFloodFromOneDevice floods from one device at ten times its rate limit while four
// devices behave: theirs stay served (more than 99 % success) and their p99 latency stays
// within twice the unloaded figure (plus 2 ms for timer granularity), measured in this run.
func TestFloodFromOneDevice(t *testing.T) {
	if os.Getenv("VITALGATE_LOAD_TESTS") != "1" {
		t.Skip("load test: run alone with VITALGATE_LOAD_TESTS=1 (.ci/run does), since latency ratios need a quiet machine")
	}
	e := MustEnvWith(t, func(c *httpapi.Config) {
		c.RatePerCaller, c.BurstPerCaller = 20, 20
		c.RatePerIP, c.BurstPerIP = 100000, 100000 // every client is 127.0.0.1 here
	})
	const good = 4
	var clients []*http.Client
	for i := 0; i < good; i++ {
		id, pat := fmt.Sprintf("good-%d", i), fmt.Sprintf("pat-%d", i)
		cert := e.enroll(id, e.addDevice(id, pat))
		clients = append(clients, e.client(cert))
	}
	flooder := e.client(e.enroll("flood", e.addDevice("flood", "pat-f")))

	measure := func(d time.Duration) (ok, total int, lat []time.Duration) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func(i int, c *http.Client) {
				defer wg.Done()
				body := mustJSON(t, example(t, "Observation-heart-rate.json", fmt.Sprintf("pat-%d", i), fmt.Sprintf("good-%d", i)))
				tick := time.NewTicker(100 * time.Millisecond) // 10/s, half the limit
				defer tick.Stop()
				end := time.Now().Add(d)
				for time.Now().Before(end) {
					<-tick.C
					start := time.Now()
					r := e.do(c, "POST", "/fhir/Observation", "application/fhir+json", body)
					el := time.Since(start)
					mu.Lock()
					total++
					if r.err == nil && r.status == 201 {
						ok++
						lat = append(lat, el)
					}
					mu.Unlock()
				}
			}(i, c)
		}
		wg.Wait()
		return ok, total, lat
	}

	body := mustJSON(t, example(t, "Observation-heart-rate.json", "pat-f", "flood"))
	// One paired measurement: unloaded before, under the flood, unloaded after (the larger
	// unloaded figure counts, so that a drift of the machine's own load is not blamed on the
	// flood).
	attempt := func() (ok, total int, unloaded, loaded time.Duration, floodSent, flood429 int) {
		_, _, base := measure(2 * time.Second)
		if len(base) < 30 {
			t.Fatalf("only %d unloaded samples", len(base))
		}
		unloaded = p99(base)
		stop := make(chan struct{})
		var fmu sync.Mutex
		var fwg sync.WaitGroup
		for g := 0; g < 4; g++ {
			fwg.Add(1)
			go func() {
				defer fwg.Done()
				tick := time.NewTicker(20 * time.Millisecond) // 4 × 50/s = 200/s, ten times the limit
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					r := e.do(flooder, "POST", "/fhir/Observation", "application/fhir+json", body)
					fmu.Lock()
					floodSent++
					if r.status == 429 {
						flood429++
					}
					fmu.Unlock()
				}
			}()
		}
		ok, total, lat := measure(3 * time.Second)
		close(stop)
		fwg.Wait()
		if _, _, after := measure(2 * time.Second); len(after) > 0 && p99(after) > unloaded {
			unloaded = p99(after)
		}
		return ok, total, unloaded, p99(lat), floodSent, flood429
	}

	// Latency on a shared 2-CPU machine (clients, server and flooder in one process) is
	// noisy: the success rate and the limiter must hold in every attempt, the p99 bound in
	// one of up to three paired attempts. Without the limiter the flood's writes keep every
	// attempt far above the bound.
	for i := 1; i <= 3; i++ {
		ok, total, unloaded, loaded, floodSent, flood429 := attempt()
		t.Logf("attempt %d: unloaded p99 %v, loaded p99 %v, success %d/%d, flooder %d/%d throttled",
			i, unloaded, loaded, ok, total, flood429, floodSent)
		if rate := float64(ok) / float64(total); rate <= 0.99 {
			t.Fatalf("well-behaved devices' success rate %.3f under the flood, want > 0.99", rate)
		}
		if flood429 < floodSent/2 {
			t.Fatalf("the flooder got %d 429s out of %d requests; the limit does not bite", flood429, floodSent)
		}
		if loaded <= 2*unloaded+2*time.Millisecond {
			return
		}
	}
	t.Errorf("well-behaved devices' p99 under the flood exceeded twice the unloaded p99 in three paired attempts")
}

// TestSlowLoris opens 500 connections that never finish a request; the server still serves
// a new client, and closes those connections when their timeouts pass.
func TestSlowLoris(t *testing.T) {
	e := MustEnvWith(t, func(c *httpapi.Config) {
		c.ReadHeaderTimeout = time.Second
		c.MaxConnsPerIP = 1000
	})
	addr := strings.TrimPrefix(e.url, "https://")
	var conns []net.Conn
	for i := 0; i < 500; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if i%2 == 1 { // half of them complete TLS and then dribble a header
			tc := tls.Client(c, &tls.Config{RootCAs: e.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
			if err := tc.Handshake(); err != nil {
				t.Fatalf("handshake %d: %v", i, err)
			}
			_, _ = io.WriteString(tc, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			c = tc
		} else {
			_, _ = c.Write([]byte{0x16, 0x03, 0x01}) // the first bytes of a ClientHello, then nothing
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if r := e.do(e.client(nil), "GET", "/healthz", "", nil); r.err != nil || r.status != 200 {
		t.Fatalf("a new client is not served during the slow-loris: %v %d", r.err, r.status)
	}
	deadline := time.Now().Add(10 * time.Second)
	closed := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(deadline)
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("a slow connection was still open 10 s later")
				}
				closed++
				break
			}
		}
	}
	if closed != len(conns) {
		t.Fatalf("%d of %d slow connections closed", closed, len(conns))
	}
}

// TestClientGoneMidBody: a client that disconnects halfway through its body leaves nothing
// stored and the server serving. With one request in flight per caller, a probe from the
// same device tells when the truncated request is being handled and when it is done. On a
// loaded machine the first probe can reach the guard before the truncated request does,
// which is then refused (the refusal counter tells); the test starts over on a new
// connection when that happens.
func TestClientGoneMidBody(t *testing.T) {
	e := MustEnvWith(t, func(c *httpapi.Config) {
		c.MaxInFlightPerCaller = 1
		c.RatePerCaller, c.BurstPerCaller = 1e6, 1e6 // the probes must not hit the rate limit
	})
	cert := e.enroll("dev-1", e.addDevice("dev-1", "pat-1"))
	body := mustJSON(t, example(t, "Observation-heart-rate.json", "pat-1", "dev-1"))
	probe := e.client(cert)
	busy := func() bool { // the device's one request slot is taken
		r := e.do(probe, "POST", "/fhir/Observation", "application/fhir+json", []byte("{}"))
		return r.status == 429 && strings.Contains(string(r.body), "at once")
	}
	for attempt := 1; ; attempt++ {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(e.url, "https://"), &tls.Config{RootCAs: e.pool,
			Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS13, Time: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		refusedBefore := e.rejects("concurrency")
		fmt.Fprintf(conn, "POST /fhir/Observation HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: %d\r\n\r\n", len(body))
		_, _ = conn.Write(body[:len(body)/2])
		held := false
		waitUntil(t, "the truncated request to be in flight or refused", func() bool {
			held = busy() // a probe that got the slot was not refused and counted nothing
			return held || e.rejects("concurrency") > refusedBefore
		})
		conn.Close()
		if held {
			break
		}
		if attempt == 5 {
			t.Fatal("the truncated request lost the race to a probe five times")
		}
	}
	waitUntil(t, "the server to finish the truncated request", func() bool { return !busy() })
	if n := count(t, e); n != 0 {
		t.Fatalf("%d resources stored from a truncated request", n)
	}
	if r := e.do(e.client(cert), "POST", "/fhir/Observation", "application/fhir+json", body); r.status != 201 {
		t.Fatalf("server not serving after a client vanished: %d %v", r.status, r.err)
	}
}

// rejects is how many requests or connections the guards have refused for reason.
func (e *env) rejects(reason string) float64 {
	e.t.Helper()
	families, err := e.met.Registry.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "vitalgate_rejects_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRateLimitAnswers429: over the limit a caller gets 429 with Retry-After and a throttled
// OperationOutcome.
func TestRateLimitAnswers429(t *testing.T) {
	e := MustEnvWith(t, func(c *httpapi.Config) { c.RatePerCaller, c.BurstPerCaller = 1, 2 })
	cert := e.enroll("dev-1", e.addDevice("dev-1", "pat-1"))
	c := e.client(cert)
	body := mustJSON(t, example(t, "Observation-heart-rate.json", "pat-1", "dev-1"))
	var last result
	for i := 0; i < 5; i++ {
		last = e.do(c, "POST", "/fhir/Observation", "application/fhir+json", body)
	}
	if last.status != 429 || last.header.Get("Retry-After") == "" || !strings.Contains(string(last.body), `"throttled"`) {
		t.Fatalf("status %d Retry-After %q: %s", last.status, last.header.Get("Retry-After"), last.body)
	}
	_ = context.Background()
}
