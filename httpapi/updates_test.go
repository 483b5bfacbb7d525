package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/updateclient"
	"github.com/vitalgate/vitalgate/updates"
)

// mustUpdates builds the test server's update repository: online keys, a key dir of
// threshold 1 at keyDir, and the device models pump-a and monitor-b.
func mustUpdates(t *testing.T, store *sqlite.DB, alog *audit.Log, now func() time.Time, keyDir string) (*updates.Service, string) {
	t.Helper()
	a, _ := updates.GenerateKeyPEM(nil)
	b, _ := updates.GenerateKeyPEM(nil)
	online, err := updates.ParseOnlineKeys(a, b)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := updates.New(updates.Config{Store: store, Audit: alog, Online: online, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := updates.InitKeys(keyDir, 1, nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"pump-a", "monitor-b"} {
		if err := store.CreateModel(context.Background(), vitalgate.DeviceModel{ID: m, Binding: vitalgate.BindingAssigned}); err != nil {
			t.Fatal(err)
		}
	}
	return svc, keyDir
}

// addModelDevice registers a device of model in site and returns its enrollment secret.
func (e *env) addModelDevice(id, model, site string) string {
	e.t.Helper()
	secret, _ := auth.NewSecret(nil)
	hash, _ := auth.HashSecret(secret, fastHash, nil)
	now := e.clock.Now()
	if err := e.store.CreateDevice(context.Background(), vitalgate.Device{
		ID: id, Site: site, Model: model, Status: vitalgate.DeviceActive, CreatedAt: now, UpdatedAt: now,
		EnrollSecretHash: hash, EnrollExpiresAt: now.Add(24 * time.Hour),
	}); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// publishUpdate publishes a live release of model from content and returns its
// hash-prefixed path under /updates/targets/.
func (e *env) publishUpdate(model, version string, content io.ReadSeeker) string {
	e.t.Helper()
	ks, err := updates.LoadKeys(e.ukeys)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.upd.Publish(context.Background(), "op", ks, updates.Release{Model: model, Version: version, FileName: "fw.bin", Content: content})
	if err != nil || !r.Live {
		e.t.Fatalf("publish: %+v %v", r, err)
	}
	return "/updates/targets/" + model + "/" + version + "/" + hex.EncodeToString(r.SHA256) + ".fw.bin"
}

// tufUpdater is go-tuf's own updater, trusting the repository's first root and fetching
// over mutual TLS with cert.
func (e *env) tufUpdater(cert *tls.Certificate) *updater.Updater {
	e.t.Helper()
	root, err := e.upd.Root(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	cfg, err := config.New(e.url+"/updates/metadata", root)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.RemoteTargetsURL = e.url + "/updates/targets"
	cfg.LocalMetadataDir = filepath.Join(e.t.TempDir(), "metadata")
	cfg.LocalTargetsDir = filepath.Join(e.t.TempDir(), "targets")
	if err := cfg.SetDefaultFetcherHTTPClient(e.client(cert)); err != nil {
		e.t.Fatal(err)
	}
	if err := cfg.SetDefaultFetcherRetry(time.Millisecond, 1); err != nil {
		e.t.Fatal(err)
	}
	up, err := updater.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return up
}

// TestGoTUFUpdaterOverMutualTLS: go-tuf's updater, a conforming TUF 1.0 client, refreshes
// the metadata and downloads a release over mutual TLS from the real server; a device of
// another model can neither see the model's role nor its file, and a caller without a
// device certificate gets nothing.
func TestGoTUFUpdaterOverMutualTLS(t *testing.T) {
	e := MustEnv(t)
	body := []byte("pump firmware 1.0")
	path := e.publishUpdate("pump-a", "1.0", bytes.NewReader(body))
	pump := e.enroll("pump-1", e.addModelDevice("pump-1", "pump-a", vitalgate.DefaultSite))
	monitor := e.enroll("mon-1", e.addModelDevice("mon-1", "monitor-b", vitalgate.DefaultSite))

	up := e.tufUpdater(pump)
	if err := up.Refresh(); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	ti, err := up.GetTargetInfo("pump-a/1.0/fw.bin")
	if err != nil {
		t.Fatalf("GetTargetInfo: %v", err)
	}
	_, got, err := up.DownloadTarget(ti, filepath.Join(t.TempDir(), "fw.bin"), "")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("DownloadTarget = %q, %v", got, err)
	}

	other := e.tufUpdater(monitor)
	if err := other.Refresh(); err != nil {
		t.Fatalf("Refresh as monitor-b: %v", err)
	}
	if _, err := other.GetTargetInfo("pump-a/1.0/fw.bin"); err == nil {
		t.Fatal("a monitor-b device found pump-a's release")
	}
	for _, p := range []string{path, "/updates/metadata/1.pump-a.json"} {
		if r := e.do(e.client(monitor), "GET", p, "", nil); r.status != 404 {
			t.Errorf("monitor-b GET %s: %d, want 404", p, r.status)
		}
		if r := e.do(e.client(nil), "GET", p, "", nil); r.status != 401 {
			t.Errorf("no certificate GET %s: %d, want 401", p, r.status)
		}
	}
	r := e.do(e.client(pump), "GET", path, "", nil)
	if r.status != 200 || r.header.Get("Content-Length") != "17" || !bytes.Equal(r.body, body) {
		t.Errorf("GET %s: %d length %q", path, r.status, r.header.Get("Content-Length"))
	}
}

// pattern is a deterministic, incompressible-enough byte stream.
type pattern struct {
	rng  *rand.ChaCha8
	left int64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, _ := p.rng.Read(b)
	p.left -= int64(n)
	return n, nil
}

// peakHeap samples the heap in use until stop is called and returns the highest reading.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if h := liveHeap(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// liveHeap is the heap the last garbage collection found live: what the process holds, not
// the garbage it has not collected yet (HeapInuse counts both, and under load its peak
// depends on when collections run).
func liveHeap() uint64 {
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return m[0].Value.Uint64()
}

// residentBytes returns the process's resident set size (Linux: /proc/self/statm), or
// false where it cannot be read.
func residentBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}

// peakRSS samples the resident set size until stop is called and returns the reading at
// the start and the highest one; ok is false where the RSS cannot be read.
func peakRSS() (stop func() (start, peak uint64, ok bool)) {
	start, ok := residentBytes()
	var peak atomic.Uint64
	peak.Store(start)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for ok {
			if v, _ := residentBytes(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return func() (uint64, uint64, bool) { close(done); wg.Wait(); return start, peak.Load(), ok }
}

// TestLargeTargetBoundedMemory publishes a 256 MiB target and downloads it over mutual TLS,
// by a plain GET and then by the device update client (TUF verify, streamed to disk):
// neither the publish nor a download holds the file in memory (the heap in use, server and
// client in this process, grows by far less than the file; during the update client's
// download so does the process's resident set).
func TestLargeTargetBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads a 256 MiB target")
	}
	const size = 256 << 20
	const bound = 48 << 20 // a few 1 MiB chunks and buffers; the file is 256 MiB
	e := MustEnv(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "image.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, want), &pattern{rng: rand.NewChaCha8([32]byte{1}), left: size}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	baseHeap := liveHeap()
	stop := peakHeap()
	path := e.publishUpdate("pump-a", "big", f)
	peak := stop()
	t.Logf("publish heap growth at peak: %d KiB", (int64(peak)-int64(baseHeap))/1024)
	if peak > baseHeap+bound {
		t.Errorf("publish: live heap rose from %d to %d bytes for a %d-byte file", baseHeap, peak, size)
	}
	cert := e.enroll("pump-big", e.addModelDevice("pump-big", "pump-a", vitalgate.DefaultSite))
	runtime.GC()
	baseHeap = liveHeap()
	hc := e.client(cert)
	hc.Timeout = 0 // 256 MiB on a loaded machine may take longer than the client's usual bound
	stop = peakHeap()
	resp, err := hc.Get(e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	peak = stop()
	if err != nil || n != size || resp.ContentLength != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("download: %d bytes (Content-Length %d), %v, hash equal %v", n, resp.ContentLength, err, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	if peak > baseHeap+bound {
		t.Errorf("download: live heap rose from %d to %d bytes for a %d-byte file", baseHeap, peak, size)
	}
	t.Logf("download heap growth at peak: %d KiB for a %d MiB file", (int64(peak)-int64(baseHeap))/1024, size>>20)

	// The device's own update client verifies the release through TUF and streams it to
	// disk, checking length and hash on the way: neither side holds the file.
	root, err := e.upd.Root(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	uc, err := updateclient.New(updateclient.Config{ServerURL: e.url, HTTPClient: hc, TrustedRoot: root,
		MetadataDir: filepath.Join(state, "metadata"), TargetsDir: filepath.Join(state, "targets"), Model: "pump-a", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := uc.Verify(context.Background(), updateclient.Offer{Model: "pump-a", Version: "big", Target: "pump-a/big/fw.bin"})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	baseHeap = liveHeap()
	stop = peakHeap()
	stopRSS := peakRSS()
	file, err := uc.Download(context.Background(), tgt)
	rssStart, rssPeak, rssOK := stopRSS()
	peak = stop()
	if err != nil {
		t.Fatalf("update client download: %v", err)
	}
	if st, err := os.Stat(file); err != nil || st.Size() != size {
		t.Fatalf("update client wrote %v, %v; want %d bytes", st, err, size)
	}
	if peak > baseHeap+bound {
		t.Errorf("update client download: live heap rose from %d to %d bytes for a %d-byte file", baseHeap, peak, size)
	}
	t.Logf("update client download heap growth at peak: %d KiB for a %d MiB file", (int64(peak)-int64(baseHeap))/1024, size>>20)
	const rssBound = 96 << 20 // the heap bound, the SQLite page cache and the runtime's slack
	switch {
	case !rssOK:
		t.Log("the resident set size cannot be read here (no /proc/self/statm): RSS not checked")
	case rssPeak > rssStart+rssBound:
		t.Errorf("update client download: resident set rose from %d to %d bytes for a %d-byte file", rssStart, rssPeak, size)
	default:
		t.Logf("update client download RSS growth at peak: %d KiB for a %d MiB file", (int64(rssPeak)-int64(rssStart))/1024, size>>20)
	}
}
