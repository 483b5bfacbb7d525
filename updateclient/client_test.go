package updateclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/vitalgate/vitalgate/updateclient"
	"github.com/vitalgate/vitalgate/updateclient/tuftest"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// updateServer is what the client tests use of a server: where it is and a device client
// for it. tuftest.Server implements it over a tuftest.Repo; an e2e test implements it over
// the real httpapi server and `vitalgate update publish` data.
type updateServer interface {
	URL() string
	DeviceClient(t testing.TB) *http.Client
}

// t0 is the repository's "now" in every test: metadata expiry is judged against it, never
// against the wall clock.
var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// sleeps records the waits of the retry loop instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// device is one device's update client and its state directory.
type device struct {
	c      *updateclient.Client
	dir    string
	now    *time.Time
	sleeps *sleeps
}

func newDevice(t testing.TB, srv updateServer, root []byte, model string, mod func(*updateclient.Config)) *device {
	t.Helper()
	now := t0
	d := &device{dir: t.TempDir(), now: &now, sleeps: &sleeps{}}
	cfg := updateclient.Config{
		ServerURL:   srv.URL(),
		HTTPClient:  srv.DeviceClient(t),
		TrustedRoot: root,
		MetadataDir: filepath.Join(d.dir, "metadata"),
		TargetsDir:  filepath.Join(d.dir, "targets"),
		Model:       model,
		Now:         func() time.Time { return *d.now },
		Sleep:       d.sleeps.sleep,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := updateclient.New(cfg)
	must(t, err)
	d.c = c
	return d
}

// fetch verifies an offer for target tp and downloads it, returning the file's contents.
func (d *device) fetch(ctx context.Context, tp string) ([]byte, error) {
	parts := strings.SplitN(tp, "/", 3)
	t, err := d.c.Verify(ctx, updateclient.Offer{Model: parts[0], Version: parts[1], Target: tp})
	if err != nil {
		return nil, err
	}
	p, err := d.c.Download(ctx, t)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// image returns n bytes of a recognisable target image.
func image(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

func TestVerifyAndDownload(t *testing.T) {
	repo := tuftest.NewRepo(t, t0, "infusion-pump", "monitor")
	srv := tuftest.NewServer(t, repo.Dir)
	fw := image(300_000, 1)
	tp := repo.AddRelease("infusion-pump", "1.2.0", "firmware.bin", fw)
	dev := newDevice(t, srv, repo.RootBytes(), "infusion-pump", nil)
	ctx := context.Background()

	tgt, err := dev.c.Verify(ctx, updateclient.Offer{Model: "infusion-pump", Version: "1.2.0", Target: tp})
	must(t, err)
	if tgt.Length != int64(len(fw)) || tgt.Version != "1.2.0" || len(tgt.Hashes["sha256"]) != 64 {
		t.Fatalf("target = %+v", tgt)
	}
	p, err := dev.c.Download(ctx, tgt)
	must(t, err)
	got, err := os.ReadFile(p)
	must(t, err)
	if !bytes.Equal(got, fw) {
		t.Fatal("downloaded file differs from the published one")
	}
	// A verified file in place is not downloaded again.
	served := "/updates/targets/" + strings.Replace(tp, "firmware.bin", tgt.Hashes["sha256"]+".firmware.bin", 1)
	if n := srv.Hits(served); n != 1 {
		t.Fatalf("%s fetched %d times, want 1", served, n)
	}
	if _, err := dev.c.Download(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	if n := srv.Hits(served); n != 1 {
		t.Fatalf("after a second Download, %s fetched %d times, want 1", served, n)
	}
	// The metadata the device trusts now is on its disk.
	for _, f := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json", "infusion-pump.json"} {
		if _, err := os.Stat(filepath.Join(dev.dir, "metadata", f)); err != nil {
			t.Errorf("metadata dir: %v", err)
		}
	}
}

// TestAttacks stages each attack of issue 18 §6 against a real HTTPS server with client
// certificate authentication, on a device that already trusts an earlier state of the
// repository, and checks the client refuses it for the right reason and keeps no file.
func TestAttacks(t *testing.T) {
	const model = "infusion-pump"
	type env struct {
		repo *tuftest.Repo
		srv  *tuftest.Server
		dev  *device
	}
	tests := []struct {
		name string
		// stage changes what the server serves and returns the target path to ask for.
		stage func(t *testing.T, e env) string
		want  error
		// genuine: the staging itself fetched the target legitimately first.
		genuine bool
	}{
		{
			name: "tampered target file",
			stage: func(t *testing.T, e env) string {
				tp := e.repo.AddRelease(model, "2.0.0", "fw.bin", image(5000, 2))
				evil := image(5000, 3) // same length, other bytes
				must(t, os.WriteFile(e.repo.ServedFile(tp), evil, 0o600))
				return tp
			},
			want: updateclient.ErrHash,
		},
		{
			name: "target longer than signed",
			stage: func(t *testing.T, e env) string {
				tp := e.repo.AddRelease(model, "2.0.0", "fw.bin", image(5000, 2))
				must(t, os.WriteFile(e.repo.ServedFile(tp), append(image(5000, 2), "and more"...), 0o600))
				return tp
			},
			want: updateclient.ErrLength,
		},
		{
			name: "target shorter than signed",
			stage: func(t *testing.T, e env) string {
				tp := e.repo.AddRelease(model, "2.0.0", "fw.bin", image(5000, 2))
				must(t, os.WriteFile(e.repo.ServedFile(tp), image(4000, 2), 0o600))
				return tp
			},
			want: updateclient.ErrLength,
		},
		{
			name: "target longer than signed, sent without Content-Length",
			stage: func(t *testing.T, e env) string {
				tp := e.repo.AddRelease(model, "2.0.0", "fw.bin", image(5000, 2))
				must(t, os.WriteFile(e.repo.ServedFile(tp), append(image(5000, 2), "and more"...), 0o600))
				e.srv.Chunked.Store(true)
				return tp
			},
			want: updateclient.ErrLength,
		},
		{
			name: "endless target",
			stage: func(t *testing.T, e env) string {
				e.srv.Endless.Store(true)
				return e.repo.AddRelease(model, "2.0.0", "fw.bin", image(5000, 2))
			},
			want: updateclient.ErrLength,
		},
		{
			name: "tampered target file, sent without Content-Length",
			stage: func(t *testing.T, e env) string {
				tp := e.repo.AddRelease(model, "2.0.0", "fw.bin", image(5000, 2))
				must(t, os.WriteFile(e.repo.ServedFile(tp), image(5000, 3), 0o600))
				e.srv.Chunked.Store(true)
				return tp
			},
			want: updateclient.ErrHash,
		},
		{
			name: "replayed old timestamp (rollback)",
			stage: func(t *testing.T, e env) string {
				old, err := os.ReadFile(e.repo.MetaPath("timestamp.json"))
				must(t, err)
				tp := e.repo.AddRelease(model, "2.0.0", "fw.bin", image(5000, 2))
				if _, err := e.dev.fetch(context.Background(), tp); err != nil {
					t.Fatalf("the genuine release: %v", err)
				}
				must(t, os.WriteFile(e.repo.MetaPath("timestamp.json"), old, 0o600))
				return tp
			},
			want:    updateclient.ErrRollback,
			genuine: true,
		},
		{
			name: "expired timestamp (freeze)",
			stage: func(t *testing.T, e env) string {
				// The server stops refreshing; two days later the device's clock is past
				// the timestamp's expiry.
				*e.dev.now = t0.Add(2 * day)
				return model + "/1.0.0/fw.bin"
			},
			want: updateclient.ErrFreeze,
		},
		{
			name: "mix-and-match: old role metadata served as the new version",
			stage: func(t *testing.T, e env) string {
				old, err := os.ReadFile(e.repo.MetaPath("2." + model + ".json"))
				must(t, err)
				tp := e.repo.AddRelease(model, "2.0.0", "fw.bin", image(5000, 2))
				must(t, os.WriteFile(e.repo.MetaPath("3."+model+".json"), old, 0o600))
				return tp
			},
			want: updateclient.ErrRollback,
		},
		{
			name: "online keys compromised: attacker lists a target in the model role",
			stage: func(t *testing.T, e env) string {
				// The attacker holds the snapshot and timestamp keys only: the model role
				// it rewrites carries a signature by the snapshot key, not the model's.
				return e.repo.ListTarget(model, model, "6.6.6", "evil.bin", image(5000, 6), e.repo.Keys[metadata.SNAPSHOT])
			},
			want: updateclient.ErrUnsigned,
		},
		{
			name: "online keys compromised: attacker rolls the model role back",
			stage: func(t *testing.T, e env) string {
				tp := e.repo.AddRelease(model, "2.0.0", "fw.bin", image(5000, 2))
				if _, err := e.dev.fetch(context.Background(), tp); err != nil {
					t.Fatalf("the genuine release: %v", err)
				}
				// A freshly signed snapshot and timestamp that name the role's older version.
				e.repo.Snapshot.Signed.Meta[model+".json"] = metadata.MetaFile(2)
				e.repo.WriteSnapshotOnly()
				e.repo.Timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(e.repo.Snapshot.Signed.Version)
				e.repo.Timestamp.Signed.Version++
				e.repo.WriteTimestamp()
				return model + "/1.0.0/fw.bin"
			},
			want: updateclient.ErrRollback,
		},
		{
			name: "another model's target",
			stage: func(t *testing.T, e env) string {
				return e.repo.AddRelease("monitor", "1.0.0", "fw.bin", image(5000, 4))
			},
			want: updateclient.ErrNotDelegated,
		},
		{
			name: "target under this model's path listed only by another model's role",
			stage: func(t *testing.T, e env) string {
				return e.repo.ListTarget("monitor", model, "3.0.0", "fw.bin", image(5000, 5), e.repo.Keys["monitor"])
			},
			want: updateclient.ErrNotDelegated,
		},
		{
			name: "target listed by the top-level targets role, not the model's",
			stage: func(t *testing.T, e env) string {
				return e.repo.ListTarget(metadata.TARGETS, model, "3.0.0", "fw.bin", image(5000, 5), e.repo.Keys[metadata.TARGETS])
			},
			want: updateclient.ErrNotDelegated,
		},
		{
			name: "target nobody signed",
			stage: func(*testing.T, env) string {
				return model + "/9.9.9/fw.bin"
			},
			want: updateclient.ErrNotDelegated,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := tuftest.NewRepo(t, t0, model, "monitor")
			srv := tuftest.NewServer(t, repo.Dir)
			first := repo.AddRelease(model, "1.0.0", "fw.bin", image(4096, 1))
			dev := newDevice(t, srv, repo.RootBytes(), model, nil)
			if _, err := dev.fetch(context.Background(), first); err != nil {
				t.Fatalf("baseline release: %v", err)
			}
			tp := tt.stage(t, env{repo, srv, dev})
			_, err := dev.fetch(context.Background(), tp)
			if !errors.Is(err, tt.want) {
				t.Fatalf("fetch %s: err = %v, want %v", tp, err, tt.want)
			}
			t.Logf("refused: %v", err)
			if tp != first && !tt.genuine {
				if _, err := os.Stat(filepath.Join(dev.dir, "targets", strings.ReplaceAll(tp, "/", "%2F"))); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a refused target was kept: %v", err)
				}
			}
			left, err := filepath.Glob(filepath.Join(dev.dir, "targets", ".download-*"))
			must(t, err)
			if len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// TestMetadataAttackEvidence checks that a metadata refusal carries go-tuf's own error as
// evidence.
func TestMetadataAttackEvidence(t *testing.T) {
	repo := tuftest.NewRepo(t, t0, "m")
	srv := tuftest.NewServer(t, repo.Dir)
	tp := repo.AddRelease("m", "1", "f", image(10, 1))
	dev := newDevice(t, srv, repo.RootBytes(), "m", nil)
	*dev.now = t0.Add(3 * day)
	_, err := dev.fetch(context.Background(), tp)
	var expired *metadata.ErrExpiredMetadata
	if !errors.As(err, &expired) || !errors.Is(err, updateclient.ErrFreeze) {
		t.Fatalf("err = %v, want ErrFreeze carrying *metadata.ErrExpiredMetadata", err)
	}
}

func TestClockSkew(t *testing.T) {
	tests := []struct {
		name  string
		ahead time.Duration // how far past the timestamp's expiry the device clock is
		skew  time.Duration
		want  error
	}{
		{"within the allowed skew", 4 * time.Minute, 5 * time.Minute, nil},
		{"past the allowed skew", 6 * time.Minute, 5 * time.Minute, updateclient.ErrFreeze},
		{"no skew allowed", time.Second, 0, updateclient.ErrFreeze},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := tuftest.NewRepo(t, t0, "m")
			srv := tuftest.NewServer(t, repo.Dir)
			tp := repo.AddRelease("m", "1", "f", image(10, 1))
			dev := newDevice(t, srv, repo.RootBytes(), "m", func(c *updateclient.Config) { c.ClockSkew = tt.skew })
			*dev.now = repo.Timestamp.Signed.Expires.Add(tt.ahead)
			_, err := dev.fetch(context.Background(), tp)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRootRotation(t *testing.T) {
	repo := tuftest.NewRepo(t, t0, "m")
	srv := tuftest.NewServer(t, repo.Dir)
	provisioned := repo.RootBytes()
	// Root 2 replaces the root and timestamp keys.
	old := repo.RotateKeys(metadata.ROOT, metadata.TIMESTAMP)
	tp := repo.AddRelease("m", "1", "f", image(10, 1))

	dev := newDevice(t, srv, provisioned, "m", nil)
	if _, err := dev.fetch(context.Background(), tp); err != nil {
		t.Fatalf("after a root rotation: %v", err)
	}
	var trusted metadata.RootType
	b, err := os.ReadFile(filepath.Join(dev.dir, "metadata", "root.json"))
	must(t, err)
	var env struct{ Signed json.RawMessage }
	must(t, json.Unmarshal(b, &env))
	must(t, json.Unmarshal(env.Signed, &trusted))
	if trusted.Version != 2 {
		t.Fatalf("the device trusts root version %d, want 2", trusted.Version)
	}
	// A timestamp signed with the revoked key is refused.
	repo.Keys[metadata.TIMESTAMP] = old[metadata.TIMESTAMP]
	repo.Timestamp.Signed.Version++
	repo.WriteTimestamp()
	if _, err := dev.fetch(context.Background(), tp); !errors.Is(err, updateclient.ErrUnsigned) {
		t.Fatalf("timestamp signed by a revoked key: err = %v, want ErrUnsigned", err)
	}
}

func TestRetryBackoff(t *testing.T) {
	repo := tuftest.NewRepo(t, t0, "m")
	srv := tuftest.NewServer(t, repo.Dir)
	tp := repo.AddRelease("m", "1", "f", image(10, 1))
	dev := newDevice(t, srv, repo.RootBytes(), "m", func(c *updateclient.Config) {
		c.Retry = updateclient.Retry{Attempts: 4, Initial: time.Second, Max: 3 * time.Second}
	})
	// Three 503s, then the server recovers: the fourth attempt succeeds.
	srv.FailNext.Store(3)
	if _, err := dev.fetch(context.Background(), tp); err != nil {
		t.Fatalf("after transient failures: %v", err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
	if got := dev.sleeps.waits(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("waits = %v, want %v", got, want)
	}
	// Four 503s exhaust the attempts.
	srv.FailNext.Store(4)
	_, _, err := dev.c.Offer(context.Background())
	var se *updateclient.StatusError
	if !errors.As(err, &se) || se.StatusCode != 503 {
		t.Fatalf("err = %v, want the last 503", err)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter int32
		want       []time.Duration
	}{
		{"longer than the backoff", 2, []time.Duration{2 * time.Second, 2 * time.Second}},
		{"capped at Max", 600, []time.Duration{3 * time.Second, 3 * time.Second}},
		{"shorter than the backoff", 1, []time.Duration{time.Second, 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := tuftest.NewRepo(t, t0, "m")
			srv := tuftest.NewServer(t, repo.Dir)
			dev := newDevice(t, srv, repo.RootBytes(), "m", func(c *updateclient.Config) {
				c.Retry = updateclient.Retry{Attempts: 3, Initial: time.Second, Max: 3 * time.Second}
			})
			srv.FailNext.Store(2)
			srv.RetryAfter.Store(tt.retryAfter)
			if _, _, err := dev.c.Offer(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := dev.sleeps.waits(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("waits = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackoffCapped(t *testing.T) {
	r := updateclient.Retry{Attempts: 10, Initial: 250 * time.Millisecond, Max: 5 * time.Second}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := r.Backoff(i); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i, got, w)
		}
	}
	if got := r.Backoff(1000); got != 5*time.Second {
		t.Errorf("Backoff(1000) = %v", got)
	}
}

func TestOfferAndReport(t *testing.T) {
	repo := tuftest.NewRepo(t, t0, "m")
	srv := tuftest.NewServer(t, repo.Dir)
	dev := newDevice(t, srv, repo.RootBytes(), "m", nil)
	ctx := context.Background()

	if _, ok, err := dev.c.Offer(ctx); ok || err != nil {
		t.Fatalf("no offer: ok=%v err=%v", ok, err)
	}
	body := []byte(`{"model":"m","version":"1","target":"m/1/f","critical":true}`)
	srv.SetOffer(body)
	o, ok, err := dev.c.Offer(ctx)
	if err != nil || !ok || o != (updateclient.Offer{Model: "m", Version: "1", Target: "m/1/f", Critical: true}) {
		t.Fatalf("offer = %+v %v %v", o, ok, err)
	}
	bad := []byte(`{"model":"m","version":"1","target":"m/2/f"}`)
	srv.SetOffer(bad)
	if _, _, err := dev.c.Offer(ctx); !errors.Is(err, updateclient.ErrInvalidOffer) {
		t.Fatalf("offer for a target of another version: err = %v", err)
	}

	must(t, dev.c.Report(ctx, updateclient.Report{Version: "1", State: updateclient.StateFailed, Reason: "disk full"}))
	got := string(srv.Reports()[0].Body)
	if got != `{"version":"1","state":"failed","reason":"disk full"}` {
		t.Fatalf("report body = %s", got)
	}
	if err := dev.c.Report(ctx, updateclient.Report{Version: "1", State: "done"}); err == nil {
		t.Fatal("a report with a state outside the contract was sent")
	}
}

func TestNoUpdateService(t *testing.T) {
	// A server without update routes answers 404: the client says so plainly.
	repo := tuftest.NewRepo(t, t0, "m")
	srv := tuftest.NewServer(t, repo.Dir)
	srv.NotFound.Store(true)
	dev := newDevice(t, srv, repo.RootBytes(), "m", nil)
	ctx := context.Background()
	for name, err := range map[string]error{
		"verify": func() error { _, err := dev.fetch(ctx, "m/1/f"); return err }(),
		"report": dev.c.Report(ctx, updateclient.Report{Version: "1", State: updateclient.StateHealthy}),
	} {
		if !errors.Is(err, updateclient.ErrNoUpdateService) {
			t.Errorf("%s: err = %v, want ErrNoUpdateService", name, err)
		}
	}
	if len(dev.sleeps.waits()) != 0 {
		t.Errorf("404 answers were retried: %v", dev.sleeps.waits())
	}
}

func TestMutualTLSRequired(t *testing.T) {
	repo := tuftest.NewRepo(t, t0, "m")
	srv := tuftest.NewServer(t, repo.Dir)
	cfg := updateclient.Config{
		ServerURL: srv.URL(), HTTPClient: srv.Client(nil), TrustedRoot: repo.RootBytes(),
		MetadataDir: t.TempDir(), TargetsDir: t.TempDir(), Model: "m",
		Retry: updateclient.Retry{Attempts: 1},
	}
	c, err := updateclient.New(cfg)
	must(t, err)
	if _, _, err := c.Offer(context.Background()); err == nil {
		t.Fatal("a client without a device certificate got an answer")
	}
}

func TestConfigValidate(t *testing.T) {
	good := updateclient.Config{ServerURL: "https://h", HTTPClient: &http.Client{}, TrustedRoot: []byte("{}"), MetadataDir: "a", TargetsDir: "b", Model: "m"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*updateclient.Config)
	}{
		{"http URL", func(c *updateclient.Config) { c.ServerURL = "http://h" }},
		{"no client", func(c *updateclient.Config) { c.HTTPClient = nil }},
		{"no root", func(c *updateclient.Config) { c.TrustedRoot = nil }},
		{"no dirs", func(c *updateclient.Config) { c.MetadataDir = "" }},
		{"model with slash", func(c *updateclient.Config) { c.Model = "a/b" }},
		{"negative skew", func(c *updateclient.Config) { c.ClockSkew = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			if c.Validate() == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestTargetNamesEscaped(t *testing.T) {
	repo := tuftest.NewRepo(t, t0, "m")
	srv := tuftest.NewServer(t, repo.Dir)
	dev := newDevice(t, srv, repo.RootBytes(), "m", nil)
	for _, name := range []string{"fw%41.bin", "fw#1?.bin", "fw+ü.img"} {
		data := image(100, name[2])
		tp := repo.AddRelease("m", "1", name, data)
		got, err := dev.fetch(context.Background(), tp)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestDownloadStreams checks that a large target goes to disk without passing through memory
// whole: the bytes allocated during Download (client and test server together) stay well
// under the target's size.
func TestDownloadStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("moves a 64 MiB target")
	}
	const size = 64 << 20
	repo := tuftest.NewRepo(t, t0, "m")
	srv := tuftest.NewServer(t, repo.Dir)
	tp := repo.AddRelease("m", "1", "big.img", image(size, 9))
	dev := newDevice(t, srv, repo.RootBytes(), "m", nil)
	ctx := context.Background()
	tgt, err := dev.c.Verify(ctx, updateclient.Offer{Model: "m", Version: "1", Target: tp})
	must(t, err)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := dev.c.Download(ctx, tgt)
	must(t, err)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Fatalf("Download of a %d MiB target allocated %d MiB", size>>20, alloc>>20)
	} else {
		t.Logf("Download of a %d MiB target allocated %d KiB", size>>20, alloc>>10)
	}
	st, err := os.Stat(p)
	must(t, err)
	if st.Size() != size {
		t.Fatalf("file is %d bytes", st.Size())
	}
}
