package postgres_test

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/postgres"
	"github.com/vitalgate/vitalgate/updates"
)

// TestUpdatesAcrossNodes: two nodes on one PostgreSQL schema (two pools, the same online
// keys, as two nodes with copies of one data dir). A release published through the first
// is downloaded through the second by go-tuf's updater, target file streamed from the
// chunks in the database; then both nodes refresh the timestamp at once and exactly one
// new version is stored.
func TestUpdatesAcrossNodes(t *testing.T) {
	schema := NewSchema(t)
	ctx := t.Context()
	snapPEM, _ := updates.GenerateKeyPEM(nil)
	tsPEM, _ := updates.GenerateKeyPEM(nil)
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	var mu sync.Mutex
	now := time.Now().UTC()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var svcs []*updates.Service
	var dbs []*postgres.DB
	for i := range 2 {
		db := MustOpen(t, schema, postgres.Options{MaxConns: 4})
		online, err := updates.ParseOnlineKeys(snapPEM, tsPEM)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := updates.New(updates.Config{Store: db, Audit: audit.NewLog(db, signer, "test", "node-"+string(rune('1'+i)), clock), Online: online, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		svcs, dbs = append(svcs, svc), append(dbs, db)
	}
	if err := dbs[0].CreateModel(ctx, vitalgate.DeviceModel{ID: "pump-a", Binding: vitalgate.BindingAssigned}); err != nil {
		t.Fatal(err)
	}
	if err := dbs[0].CreateDevice(ctx, vitalgate.Device{ID: "dev-1", Site: vitalgate.DefaultSite, Model: "pump-a", Status: vitalgate.DeviceActive}); err != nil {
		t.Fatal(err)
	}
	keys, err := updates.InitKeys(filepath.Join(t.TempDir(), "keys"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("pump firmware "), 300_000) // 4.2 MB: five chunks
	r, err := svcs[0].Publish(ctx, "op", keys, updates.Release{Model: "pump-a", Version: "1.0", FileName: "fw.bin", Content: bytes.NewReader(body)})
	if err != nil || !r.Live {
		t.Fatalf("publish through node 1: %+v %v", r, err)
	}

	// Node 2 serves what node 1 published.
	p := vitalgate.Principal{Kind: "device", ID: "dev-1", Role: vitalgate.RoleDevice}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metadata/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, err := svcs[1].Metadata(r.Context(), p, r.PathValue("name"))
		if err != nil {
			http.Error(w, vitalgate.ErrorMessage(err), http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /targets/{path...}", func(w http.ResponseWriter, r *http.Request) {
		f, err := svcs[1].Target(r.Context(), p, r.PathValue("path"))
		if err != nil {
			http.Error(w, vitalgate.ErrorMessage(err), http.StatusNotFound)
			return
		}
		_, _ = f.WriteTo(w)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	root, err := svcs[1].Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.New(srv.URL+"/metadata", root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteTargetsURL = srv.URL + "/targets"
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = t.TempDir(), t.TempDir()
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatalf("refresh through node 2: %v", err)
	}
	ti, err := up.GetTargetInfo("pump-a/1.0/fw.bin")
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := up.DownloadTarget(ti, "", "")
	if err != nil || sha256.Sum256(got) != sha256.Sum256(body) {
		t.Fatalf("download through node 2: %d bytes, %v", len(got), err)
	}

	// Both nodes refresh at once, 20 hours on: one stores timestamp 2, the other finds it.
	mu.Lock()
	now = now.Add(20 * time.Hour)
	mu.Unlock()
	var wg sync.WaitGroup
	did := make([]bool, 2)
	errs := make([]error, 2)
	for i := range svcs {
		wg.Go(func() { did[i], errs[i] = svcs[i].Refresh(ctx) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("refresh errors: %v, %v", errs[0], errs[1])
	}
	ts, err := dbs[1].UpdateMetadata(ctx, "timestamp", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := btoi(did[0]) + btoi(did[1]); n != 1 || ts.Version != 2 {
		t.Fatalf("refreshes stored %d new timestamps (latest version %d), want exactly one", n, ts.Version)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
