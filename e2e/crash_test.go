package e2e_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKill9LosesNothingAcknowledged streams observations from several devices, kills the
// server with SIGKILL mid-stream, restarts it, and checks that every observation that was
// answered 201 is stored exactly once.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	dir := initDir(t)
	const devices = 4
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	secrets := make([]string, devices)
	for i := range secrets {
		secrets[i] = addDevice(t, dir, fmt.Sprintf("crash-dev-%d", i), fmt.Sprintf("crash-pat-%d", i))
	}
	srv := startServer(t, dir)
	addr := strings.TrimPrefix(srv.url, "https://")
	tlsCerts := make([]tls.Certificate, devices)
	for i := range secrets {
		tlsCerts[i] = srv.enroll(t, fmt.Sprintf("crash-dev-%d", i), secrets[i])
	}

	acked := make(map[string]bool)
	var mu sync.Mutex
	for round := 0; round < rounds; round++ {
		if round > 0 {
			srv = startServerAt(t, dir, addr)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := 0; i < devices; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c := srv.client(&tlsCerts[i])
				id, pat := fmt.Sprintf("crash-dev-%d", i), fmt.Sprintf("crash-pat-%d", i)
				for n := 0; ctx.Err() == nil; n++ {
					status, body, _, err := post(ctx, c, srv.url+"/fhir/Observation", observation(pat, id, fmt.Sprint(60+n%40), time.Now()))
					if err != nil || status != 201 {
						continue // the server is going away: not acknowledged
					}
					var r struct{ ID string }
					if json.Unmarshal(body, &r) != nil || r.ID == "" {
						t.Errorf("201 without an id: %s", body)
						return
					}
					mu.Lock()
					acked[r.ID] = true
					mu.Unlock()
				}
			}(i)
		}
		time.Sleep(time.Duration(700+round*37%600) * time.Millisecond) // kill at varying points
		srv.kill()                                                     // SIGKILL while the devices are writing
		cancel()
		wg.Wait()
	}
	if len(acked) < 10 {
		t.Fatalf("only %d observations were acknowledged; the test proves nothing", len(acked))
	}
	got := exportIDs(t, dir)
	for id := range acked {
		if got[id] != 1 {
			t.Errorf("acknowledged observation %s is stored %d times, want exactly once", id, got[id])
		}
	}
	t.Logf("%d acknowledged observations over %d kill -9 rounds, all stored exactly once (%d stored in all)", len(acked), rounds, len(got))
}
