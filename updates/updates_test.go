package updates_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/updates"
)

type env struct {
	t     *testing.T
	store *sqlite.DB
	svc   *updates.Service
	now   time.Time
	keys  string
}

func mustOnline(t *testing.T) *updates.OnlineKeys {
	t.Helper()
	a, err := updates.GenerateKeyPEM(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := updates.GenerateKeyPEM(nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := updates.ParseOnlineKeys(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func newEnv(t *testing.T, threshold int, maxSize int64) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	e := &env{t: t, store: store, now: time.Now().UTC(), keys: filepath.Join(dir, "keys")}
	alog := audit.NewLog(store, signer, "test", "cli", func() time.Time { return e.now })
	alog.SetRefusalWindow(0) // every refusal its own entry
	e.svc, err = updates.New(updates.Config{Store: store, Audit: alog, Online: mustOnline(t), MaxTargetSize: maxSize,
		Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := updates.InitKeys(e.keys, threshold, nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"pump-a", "monitor-b"} {
		if err := store.CreateModel(ctx, vitalgate.DeviceModel{ID: m, Binding: vitalgate.BindingAssigned}); err != nil {
			t.Fatal(err)
		}
	}
	for id, m := range map[string]string{"dev-a": "pump-a", "dev-b": "monitor-b"} {
		if err := store.CreateDevice(ctx, vitalgate.Device{ID: id, Site: vitalgate.DefaultSite, Model: m, Status: vitalgate.DeviceActive}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// holder returns a key dir holding only key number i of each role (one key holder's copy).
func (e *env) holder(i int) *updates.KeySet {
	e.t.Helper()
	dir := filepath.Join(e.t.TempDir(), "holder")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	for _, role := range []string{"root", "targets"} {
		name := role + "-" + string(rune('0'+i)) + ".key"
		data, err := os.ReadFile(filepath.Join(e.keys, name))
		if err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
	ks, err := updates.LoadKeys(dir)
	if err != nil {
		e.t.Fatal(err)
	}
	return ks
}

func (e *env) all() *updates.KeySet {
	ks, err := updates.LoadKeys(e.keys)
	if err != nil {
		e.t.Fatal(err)
	}
	return ks
}

func (e *env) publish(ks *updates.KeySet, model, version string, body []byte) (vitalgate.UpdateRelease, error) {
	return e.svc.Publish(context.Background(), "op", ks, updates.Release{Model: model, Version: version, FileName: "fw.bin", Content: bytes.NewReader(body)})
}

// serve serves the repository as device id would see it.
func (e *env) serve(id string) *httptest.Server {
	p := vitalgate.Principal{Kind: "device", ID: id, Role: vitalgate.RoleDevice}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metadata/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, err := e.svc.Metadata(r.Context(), p, r.PathValue("name"))
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("GET /targets/{path...}", func(w http.ResponseWriter, r *http.Request) {
		f, err := e.svc.Target(r.Context(), p, r.PathValue("path"))
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		f.WriteTo(w)
	})
	srv := httptest.NewServer(mux)
	e.t.Cleanup(srv.Close)
	return srv
}

func (e *env) fetch(srv *httptest.Server, target string) ([]byte, error) {
	e.t.Helper()
	root, err := e.svc.Root(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	cfg, err := config.New(srv.URL+"/metadata", root)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.RemoteTargetsURL = srv.URL + "/targets"
	cfg.LocalMetadataDir = filepath.Join(e.t.TempDir(), "m")
	cfg.LocalTargetsDir = filepath.Join(e.t.TempDir(), "t")
	up, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := up.Refresh(); err != nil {
		return nil, err
	}
	ti, err := up.GetTargetInfo(target)
	if err != nil {
		return nil, err
	}
	_, data, err := up.DownloadTarget(ti, "", "")
	return data, err
}

func TestPublishThresholdOneIsLiveForGoTUF(t *testing.T) {
	e := newEnv(t, 1, 0)
	body := []byte("firmware 1.0")
	r, err := e.publish(e.all(), "pump-a", "1.0", body)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Live || r.Target != "pump-a/1.0/fw.bin" || r.Signed != 1 || r.Needed != 1 {
		t.Fatalf("release = %+v", r)
	}
	if _, err := e.publish(e.all(), "pump-a", "1.1", []byte("firmware 1.1")); err != nil {
		t.Fatal(err)
	}
	srv := e.serve("dev-a")
	got, err := e.fetch(srv, "pump-a/1.0/fw.bin")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("download = %q, %v", got, err)
	}
	if tgt, err := e.svc.Approved(context.Background(), "pump-a", "1.1"); err != nil || tgt != "pump-a/1.1/fw.bin" {
		t.Fatalf("Approved = %q, %v", tgt, err)
	}
	// A device of another model gets nothing of this model's.
	if _, err := e.fetch(e.serve("dev-b"), "pump-a/1.0/fw.bin"); err == nil {
		t.Fatal("a device of monitor-b downloaded pump-a's release")
	}
	sum := sha256.Sum256(body)
	if _, err := e.svc.Target(context.Background(), vitalgate.Principal{Kind: "device", ID: "dev-b"}, "pump-a/1.0/"+hex.EncodeToString(sum[:])+".fw.bin"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Fatalf("other model's target: %v", err)
	}
}

func TestThresholdTwoNeedsTwoHolders(t *testing.T) {
	e := newEnv(t, 2, 0)
	ctx := context.Background()
	// The first publish creates the root: it needs both root keys (the ceremony's key dir)
	// and signs with both targets keys: live at once.
	if _, err := e.publish(e.holder(1), "pump-a", "0.9", []byte("x")); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Fatalf("first publish without keys.json: %v", err)
	}
	r, err := e.publish(e.all(), "pump-a", "1.0", []byte("one"))
	if err != nil || !r.Live {
		t.Fatalf("publish with every key: %+v %v", r, err)
	}
	// One holder publishes: waiting for the second.
	r, err = e.publish(e.holder(1), "pump-a", "2.0", []byte("two"))
	if err != nil || r.Live || r.Signed != 1 || r.Needed != 2 {
		t.Fatalf("publish by one holder: %+v %v", r, err)
	}
	if _, err := e.svc.Approved(ctx, "pump-a", "2.0"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Fatalf("Approved before threshold: %v", err)
	}
	if _, err := e.fetch(e.serve("dev-a"), "pump-a/2.0/fw.bin"); err == nil {
		t.Fatal("a release below its threshold was served")
	}
	if _, err := e.svc.Sign(ctx, "op", e.holder(1), "pump-a", "2.0"); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Fatalf("the same holder signing twice: %v", err)
	}
	if _, err := e.publish(e.holder(2), "pump-a", "3.0", []byte("three")); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		t.Fatalf("a second pending release: %v", err)
	}
	r, err = e.svc.Sign(ctx, "op2", e.holder(2), "pump-a", "2.0")
	if err != nil || !r.Live || r.Signed != 2 {
		t.Fatalf("second signature: %+v %v", r, err)
	}
	got, err := e.fetch(e.serve("dev-a"), "pump-a/2.0/fw.bin")
	if err != nil || string(got) != "two" {
		t.Fatalf("download after threshold: %q %v", got, err)
	}
	if _, err := e.svc.Sign(ctx, "op2", e.holder(1), "pump-a", "2.0"); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		t.Fatalf("signing a live release: %v", err)
	}
}

// TestBadInputPublishesNothing: each refused publish is a clear error, leaves no release
// and no metadata behind, and is audited.
func TestBadInputPublishesNothing(t *testing.T) {
	e := newEnv(t, 1, 1024)
	ctx := context.Background()
	if _, err := e.publish(e.all(), "pump-a", "1.0", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	other := newEnv(t, 1, 0) // another repository's keys
	cases := map[string]struct {
		keys    *updates.KeySet
		model   string
		body    []byte
		code    string
		message string
	}{
		"wrong key":     {other.all(), "pump-a", []byte("x"), vitalgate.EFORBIDDEN, "not one of this repository's targets keys"},
		"unknown model": {e.all(), "no-such-model", []byte("x"), vitalgate.ENOTFOUND, "vitalgate model add"},
		"too large":     {e.all(), "pump-a", bytes.Repeat([]byte("x"), 1025), vitalgate.ETOOLARGE, "larger than the limit of 1024 bytes"},
		"bad version":   {e.all(), "pump-a", []byte("x"), vitalgate.EINVALID, "cannot be part of an update target path"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			version := "2.0"
			if name == "bad version" {
				version = "../2"
			}
			before, _ := e.store.AuditSize(ctx)
			snap, _ := e.store.UpdateMetadata(ctx, "timestamp", 0)
			_, err := e.publish(c.keys, c.model, version, c.body)
			if vitalgate.ErrorCode(err) != c.code || !strings.Contains(vitalgate.ErrorMessage(err), c.message) {
				t.Fatalf("error = %v (%s), want %s containing %q", err, vitalgate.ErrorCode(err), c.code, c.message)
			}
			if _, err := e.store.UpdateRelease(ctx, c.model, version); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
				t.Errorf("a refused release was stored: %v", err)
			}
			if now, _ := e.store.UpdateMetadata(ctx, "timestamp", 0); now.Version != snap.Version {
				t.Errorf("timestamp moved from %d to %d", snap.Version, now.Version)
			}
			after, _ := e.store.AuditSize(ctx)
			if after != before+1 {
				t.Fatalf("audit entries %d → %d, want one refusal", before, after)
			}
			var last vitalgate.AuditRecord
			e.store.AuditEntries(ctx, before, after, func(r vitalgate.AuditRecord) error { last = r; return nil })
			var ent struct{ Outcome, Subtype string }
			json.Unmarshal(last.Data, &ent)
			if ent.Outcome != "4" || ent.Subtype != "update-publish" {
				t.Errorf("audit entry = %s", last.Data)
			}
		})
	}
	if _, err := e.publish(e.all(), "pump-a", "1.0", []byte("again")); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		t.Fatalf("republishing a version: %v", err)
	}
}

func TestRefreshAndRotateRoot(t *testing.T) {
	e := newEnv(t, 1, 0)
	ctx := context.Background()
	if _, err := e.publish(e.all(), "pump-a", "1.0", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if did, err := e.svc.Refresh(ctx); err != nil || did {
		t.Fatalf("fresh timestamp refreshed: %v %v", did, err)
	}
	e.now = e.now.Add(20 * time.Hour)
	if did, err := e.svc.Refresh(ctx); err != nil || !did {
		t.Fatalf("refresh after 20h: %v %v", did, err)
	}
	ts, _ := e.store.UpdateMetadata(ctx, "timestamp", 0)
	if ts.Version != 2 || !ts.Expires.After(e.now.Add(23*time.Hour)) {
		t.Fatalf("timestamp after refresh: v%d expires %v", ts.Version, ts.Expires)
	}
	e.now = e.now.Add(5 * 24 * time.Hour)
	if did, err := e.svc.Refresh(ctx); err != nil || !did {
		t.Fatalf("refresh after 5 more days: %v %v", did, err)
	}
	if sn, _ := e.store.UpdateMetadata(ctx, "snapshot", 0); sn.Version != 2 {
		t.Fatalf("snapshot version %d after its half-life", sn.Version)
	}
	// Rotate to a new key dir: a client holding the first root follows the chain.
	newDir := filepath.Join(t.TempDir(), "new")
	nk, err := updates.InitKeys(newDir, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RotateRoot(ctx, "op", nk, updates.Rotation{}); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Fatalf("rotation signed by foreign root keys: %v", err)
	}
	v, err := e.svc.RotateRoot(ctx, "op", e.all(), updates.Rotation{NewKeys: nk})
	if err != nil || v != 2 {
		t.Fatalf("RotateRoot = %d, %v", v, err)
	}
	got, err := e.fetch(e.serve("dev-a"), "pump-a/1.0/fw.bin")
	if err != nil || string(got) != "one" {
		t.Fatalf("download after rotation: %q %v", got, err)
	}
	// The old targets key no longer signs; the new ones do, with their threshold of 2.
	if _, err := e.publish(e.all(), "pump-a", "2.0", []byte("two")); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Fatalf("publish with the retired key: %v", err)
	}
	if r, err := e.publish(nk, "pump-a", "2.0", []byte("two")); err != nil || !r.Live {
		t.Fatalf("publish with the new keys: %+v %v", r, err)
	}
	if got, err := e.fetch(e.serve("dev-a"), "pump-a/2.0/fw.bin"); err != nil || string(got) != "two" {
		t.Fatalf("download of a release signed by the new keys: %q %v", got, err)
	}
}

// TestRunRefreshes: Run, which serve starts on every node, re-signs a timestamp that is due
// at its first round and keeps going until its context ends.
func TestRunRefreshes(t *testing.T) {
	e := newEnv(t, 1, 0)
	ctx := context.Background()
	if _, err := e.publish(e.all(), "pump-a", "1.0", []byte("one")); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(20 * time.Hour) // before Run starts: the timestamp (1 day) is due
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var errs []error
	go func() {
		defer close(done)
		e.svc.Run(rctx, 10*time.Millisecond, func(err error) { errs = append(errs, err) })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts, err := e.store.UpdateMetadata(ctx, "timestamp", 0)
		if err == nil && ts.Version == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not refresh the timestamp: version %d, %v", ts.Version, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if len(errs) > 0 {
		t.Fatalf("refresh errors: %v", errs)
	}
	if ts, _ := e.store.UpdateMetadata(ctx, "timestamp", 0); ts.Version != 2 {
		t.Errorf("timestamp version %d after Run: a fresh timestamp was signed again", ts.Version)
	}
}
