package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/sqlite"
)

// writeSome stores n resources, devices and data keys named with prefix.
func writeSome(t *testing.T, db *sqlite.DB, prefix string, n int) {
	t.Helper()
	ctx := t.Context()
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		if err := db.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Observation", ID: id, Body: []byte(id)}}); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateDevice(ctx, vitalgate.Device{ID: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.PutDataKey(ctx, vitalgate.DataKey{PatientIndex: []byte(id), Wrapped: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkSome fails t unless everything writeSome stored is there.
func checkSome(t *testing.T, db *sqlite.DB, prefix string, n int) {
	t.Helper()
	ctx := t.Context()
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		if r, err := db.Resource(ctx, "Observation", id); err != nil || string(r.Body) != id {
			t.Errorf("resource %s: %v", id, err)
		}
		if _, err := db.Device(ctx, id); err != nil {
			t.Errorf("device %s: %v", id, err)
		}
		if k, err := db.DataKey(ctx, []byte(id)); err != nil || string(k.Wrapped) != id {
			t.Errorf("data key %s: %v", id, err)
		}
	}
}

func TestDurabilityReopen(t *testing.T) {
	tests := []struct {
		name  string
		close bool // close the first DB before re-opening; otherwise abandon it
	}{
		{"after-close", true},
		{"abandoned", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vitalgate.db")
			first, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			writeSome(t, first, "a", 50)
			if tt.close {
				if err := first.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				// Abandoned: never closed while the second DB runs, no checkpoint. (Closed at
				// the very end only to release its file handles.)
				t.Cleanup(func() { first.Close() })
			}
			second := MustOpen(t, path, sqlite.Options{})
			checkSome(t, second, "a", 50)
			writeSome(t, second, "b", 10)
			if err := second.Close(); err != nil {
				t.Fatal(err)
			}
			third := MustOpen(t, path, sqlite.Options{})
			checkSome(t, third, "a", 50)
			checkSome(t, third, "b", 10)
		})
	}
}

// crashEnv names the database a child process writes to until it is killed.
const crashEnv = "VITALGATE_SQLITE_CRASH_DB"

// TestDurabilityKill runs a child process (this test binary) that stores resources, each with
// an audit entry, and appends audit entries alone, from several goroutines, and reports each
// acknowledged id on standard output, kills it with SIGKILL mid-stream, and checks that every
// acknowledged resource and audit entry is in the database, and that the log is dense.
// kill -9 loses what the process had not handed to the kernel; synchronous=FULL (checked at
// Open) covers power loss, which a test cannot simulate.
func TestDurabilityKill(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make(map[string]bool)
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(30 * time.Second)
	for len(acked) < 400 && sc.Scan() && time.Now().Before(deadline) {
		if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked[id] = true
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Read what the child acknowledged before it died.
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked[id] = true
		}
	}
	_ = cmd.Wait()
	if len(acked) < 100 {
		t.Fatalf("the child acknowledged only %d resources", len(acked))
	}

	db := MustOpen(t, path, sqlite.Options{})
	logged := make(map[string]bool)
	for _, e := range auditData(t, db) { // fails t unless indexes are dense
		logged[e] = true
	}
	for id := range acked {
		if !logged["audit "+id] {
			t.Errorf("acknowledged audit entry of %s lost", id)
		}
		if strings.HasPrefix(id, "log-") {
			continue
		}
		if _, err := db.Resource(t.Context(), "Observation", id); err != nil {
			t.Errorf("acknowledged resource %s lost: %v", id, err)
		}
	}
	t.Logf("%d acknowledged writes survived kill -9", len(acked))
}

// crashChild writes until killed. It never returns normally.
func crashChild(path string) {
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%d-%06d", g, i)
				var err error
				if g%4 == 3 { // an audit entry alone, as for a read of patient data
					id = "log-" + id
					_, err = db.AppendAudit(context.Background(), []byte("audit "+id))
				} else {
					body := make([]byte, 512)
					err = db.CreateResources(context.Background(),
						[]vitalgate.SealedResource{{Type: "Observation", ID: id, Body: body}}, []byte("audit "+id))
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(w, "ack %s\n", id)
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCloseDrains closes the DB while goroutines are storing resources: every call returns
// either nil (and the resource is in the database afterwards) or EUNAVAILABLE.
func TestCloseDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	started := make(chan struct{}, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%d-%06d", g, i)
				err := db.CreateResources(context.Background(), []vitalgate.SealedResource{{Type: "Observation", ID: id, Body: []byte(id)}})
				if err != nil {
					if code := vitalgate.ErrorCode(err); code != vitalgate.EUNAVAILABLE {
						t.Errorf("CreateResources during Close: %v", err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				if i == 5 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 8 {
		<-started
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	db = MustOpen(t, path, sqlite.Options{})
	for _, id := range acked {
		if _, err := db.Resource(t.Context(), "Observation", id); err != nil {
			t.Errorf("acknowledged resource %s lost: %v", id, err)
		}
	}
}
