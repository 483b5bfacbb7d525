package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate/pki"
)

// testPostgres returns the DSN of the test PostgreSQL server and a fresh schema on it, or
// skips (fails under CI=true) when none is reachable.
func testPostgres(t *testing.T) (string, string) {
	t.Helper()
	dsn := os.Getenv("VITALGATE_TEST_POSTGRES")
	if dsn == "" {
		dsn = "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no PostgreSQL server at VITALGATE_TEST_POSTGRES or 127.0.0.1:5432, and CI=true requires one: %v", err)
		}
		t.Skipf("no PostgreSQL server reachable (set VITALGATE_TEST_POSTGRES): %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "vg_e2e_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil { // #nosec G202 -- random hex test schema name
		t.Fatal(err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	return dsn, schema
}

// TestTwoNodesOnPostgres runs two `vitalgate serve` processes on one PostgreSQL database with
// the same data-dir keys: a device enrolled through one is served by the other, a one-time
// secret works once across both, a revocation on one is honoured by the other within seconds,
// killing one under load loses nothing acknowledged, and the audit log stays one consistent,
// verifiable log.
func TestTwoNodesOnPostgres(t *testing.T) {
	dsn, schema := testPostgres(t)
	appName := "vg_e2e_" + schema[len("vg_e2e_"):]
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	t.Setenv("VITALGATE_E2E_DSN", dsn+sep+"application_name="+appName) // the DSN stays out of the data dir's files
	dirA := t.TempDir() + "/node-a"
	run(t, "init", "--data", dirA, "--store", "env:VITALGATE_E2E_DSN", "--schema", schema, "--json")
	if data, _ := os.ReadFile(dirA + "/store.json"); strings.Contains(string(data), "postgres://") {
		t.Fatal("the DSN was written to the data dir")
	}
	s1 := addDevice(t, dirA, "mn-dev-1", "mn-pat-1")
	s2 := addDevice(t, dirA, "mn-dev-2", "mn-pat-2")
	dirB := copyDir(t, dirA) // every node needs the same keys, CA and store.json

	a := startServer(t, dirA)
	b := startServer(t, dirB)
	cert1 := a.enroll(t, "mn-dev-1", s1) // enrolled through node A
	cert2 := b.enroll(t, "mn-dev-2", s2) // enrolled through node B
	ctx := context.Background()
	if status, body, _, err := post(ctx, b.client(&cert1), b.url+"/fhir/Observation", observation("mn-pat-1", "mn-dev-1", "70", time.Now())); err != nil || status != 201 {
		t.Fatalf("node B does not serve a device enrolled through node A: %d %v %s", status, err, body)
	}
	// The one-time secret of device 1 was used on A: it must not work on B.
	if code := enrollStatus(t, b, "mn-dev-1", s1); code != 401 {
		t.Fatalf("a used enrollment secret was accepted by the other node: %d", code)
	}

	// Rate limits hold for the deployment, not per node: once the nodes see each other
	// (heartbeats every 2 s), each enforces half of the per-device limit (50/s, burst 100).
	for _, s := range []*server{a, b} {
		waitFor(t, 15*time.Second, "both nodes to see each other", func() bool {
			return strings.Contains(s.stderr.String(), `"nodes":2`)
		})
	}
	var accepted, throttled atomicCount
	fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
	var fwg sync.WaitGroup
	for g := 0; g < 8; g++ {
		fwg.Add(1)
		go func(g int) {
			defer fwg.Done()
			s := a
			if g%2 == 1 {
				s = b
			}
			c := s.client(&cert1)
			for fctx.Err() == nil {
				status, _, _, err := post(fctx, c, s.url+"/fhir/Observation", observation("mn-pat-1", "mn-dev-1", "70", time.Now()))
				switch {
				case err != nil:
				case status == 201:
					accepted.add()
				case status == 429:
					throttled.add()
				}
			}
		}(g)
	}
	fwg.Wait()
	fcancel()
	// Shared out: at most 2 × (50 + 25 × 2) = 200 in 2 s; per node it would be 2 × (100 + 50 × 2) = 400.
	if n := accepted.get(); n == 0 || n > 260 || throttled.get() == 0 {
		t.Fatalf("a device flooding both nodes got %d accepted, %d throttled in 2 s: the limit is not shared between nodes", n, throttled.get())
	}
	t.Logf("flood across both nodes: %d accepted, %d throttled in 2 s", accepted.get(), throttled.get())

	// Writers on both nodes; node A is killed mid-stream.
	var mu sync.Mutex
	acked := map[string]bool{}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	writer := func(s *server, cert *tls.Certificate, pat, dev string) {
		defer wg.Done()
		c := s.client(cert)
		for n := 0; wctx.Err() == nil; n++ {
			status, body, _, err := post(wctx, c, s.url+"/fhir/Observation", observation(pat, dev, fmt.Sprint(60+n%30), time.Now()))
			if err != nil || status != 201 {
				continue
			}
			var r struct{ ID string }
			_ = json.Unmarshal(body, &r)
			mu.Lock()
			acked[r.ID] = true
			mu.Unlock()
		}
	}
	wg.Add(4)
	go writer(a, &cert1, "mn-pat-1", "mn-dev-1")
	go writer(a, &cert2, "mn-pat-2", "mn-dev-2")
	go writer(b, &cert1, "mn-pat-1", "mn-dev-1")
	go writer(b, &cert2, "mn-pat-2", "mn-dev-2")
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitFor(t, 15*time.Second, "writes on both nodes", func() bool { return ackedCount() >= 40 })
	a.kill()
	atKill := ackedCount()
	// Node B must go on acknowledging; the check below fails if it does not within 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for ackedCount() <= atKill+10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if len(acked) <= atKill {
		t.Fatalf("node B stopped serving when node A was killed (%d acknowledged before, %d after)", atKill, len(acked))
	}

	// Revoke device 2 through node B's data dir: node B refuses it within seconds.
	a = startServerAt(t, dirA, strings.TrimPrefix(a.url, "https://"))
	run(t, "device", "revoke", "--data", dirB, "--id", "mn-dev-2")
	deadline = time.Now().Add(5 * time.Second)
	for {
		status, _, _, err := post(ctx, a.client(&cert2), a.url+"/fhir/Observation", observation("mn-pat-2", "mn-dev-2", "70", time.Now()))
		if err != nil || status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node A still accepts a device revoked through node B after 5 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The database drops every connection of the nodes (as in a PostgreSQL restart): requests
	// fail cleanly (503, never 500) and recover without restarting Vitalgate.
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", appName); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	recovered := false
	for i := 0; i < 50 && !recovered; i++ {
		status, body, _, err := post(ctx, b.client(&cert1), b.url+"/fhir/Observation", observation("mn-pat-1", "mn-dev-1", "70", time.Now()))
		switch {
		case err != nil || status == 503 || status == 429:
			time.Sleep(100 * time.Millisecond)
		case status == 201:
			recovered = true
		default:
			t.Fatalf("after the database dropped its connections: %d %s", status, body)
		}
	}
	if !recovered {
		t.Fatal("node B did not recover after the database dropped its connections")
	}

	a.stop(t)
	b.stop(t)

	got := exportIDs(t, dirB)
	for id := range acked {
		if got[id] != 1 {
			t.Errorf("acknowledged observation %s stored %d times", id, got[id])
		}
	}
	if out := run(t, "audit", "verify", "--data", dirA); !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("audit verify after two nodes: %s", out)
	}
	t.Logf("%d observations acknowledged by two nodes, all stored once; the audit log verifies", len(acked))
}

// enrollStatus tries an enrollment and returns the HTTP status.
func enrollStatus(t *testing.T, s *server, id, secret string) int {
	t.Helper()
	key, _ := pki.GenerateDeviceKey(nil)
	csr, _ := pki.NewCSR(id, key, nil)
	req, _ := http.NewRequest("POST", s.url+"/.well-known/est/simpleenroll", bytes.NewReader(pki.EncodeBase64(csr)))
	req.SetBasicAuth(id, secret)
	req.Header.Set("Content-Type", "application/pkcs10")
	resp, err := s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// atomicCount is a counter shared by goroutines.
type atomicCount struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCount) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *atomicCount) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
