package updateclient_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// testRepo is a TUF repository built with go-tuf's metadata API on disk, in the layout the
// Vitalgate server serves: DIR/metadata/{N.root,timestamp,N.snapshot,N.targets,N.MODEL}.json
// and DIR/targets/MODEL/VERSION/SHA256HEX.FILENAME, consistent snapshots, one delegated
// targets role per model (paths MODEL/*/*). Root and targets keys stand for the offline
// keys, snapshot and timestamp for the online ones.
type testRepo struct {
	t   testing.TB
	dir string
	now time.Time

	keys      map[string]ed25519.PrivateKey // by role name
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	roles     map[string]*metadata.Metadata[metadata.TargetsType] // by model
	models    []string
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
}

const day = 24 * time.Hour

func newTestRepo(t testing.TB, now time.Time, models ...string) *testRepo {
	t.Helper()
	r := &testRepo{t: t, dir: t.TempDir(), now: now, keys: map[string]ed25519.PrivateKey{}, roles: map[string]*metadata.Metadata[metadata.TargetsType]{}, models: models}
	for _, d := range []string{"metadata", "targets"} {
		must(t, os.MkdirAll(filepath.Join(r.dir, d), 0o700))
	}
	r.root = metadata.Root(now.Add(365 * day))
	r.root.Signed.ConsistentSnapshot = true
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		r.keys[role] = newKey(t)
		must(t, r.root.Signed.AddKey(tufKey(t, r.keys[role]), role))
	}
	r.targets = metadata.Targets(now.Add(365 * day))
	r.targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	for _, m := range models {
		r.keys[m] = newKey(t)
		k := tufKey(t, r.keys[m])
		id, err := k.ID()
		must(t, err)
		r.targets.Signed.Delegations.Keys[id] = k
		r.targets.Signed.Delegations.Roles = append(r.targets.Signed.Delegations.Roles, metadata.DelegatedRole{
			Name: m, KeyIDs: []string{id}, Threshold: 1, Terminating: true, Paths: []string{m + "/*/*"},
		})
		r.roles[m] = metadata.Targets(now.Add(365 * day))
	}
	r.snapshot = metadata.Snapshot(now.Add(7 * day))
	r.timestamp = metadata.Timestamp(now.Add(day))
	r.writeRoot()
	r.writeTargets(metadata.TARGETS, r.targets, r.keys[metadata.TARGETS])
	for _, m := range models {
		r.writeTargets(m, r.roles[m], r.keys[m])
	}
	r.writeSnapshotTimestamp()
	return r
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	return k
}

func tufKey(t testing.TB, k ed25519.PrivateKey) *metadata.Key {
	t.Helper()
	key, err := metadata.KeyFromPublicKey(k.Public())
	must(t, err)
	return key
}

func signer(t testing.TB, k ed25519.PrivateKey) signature.Signer {
	t.Helper()
	s, err := signature.LoadSigner(k, crypto.Hash(0))
	must(t, err)
	return s
}

// rootBytes returns the current root.json, as a device is provisioned with it.
func (r *testRepo) rootBytes() []byte {
	b, err := r.root.ToBytes(false)
	must(r.t, err)
	return b
}

func (r *testRepo) metaPath(name string) string { return filepath.Join(r.dir, "metadata", name) }

func (r *testRepo) writeRoot() {
	r.root.ClearSignatures()
	_, err := r.root.Sign(signer(r.t, r.keys[metadata.ROOT]))
	must(r.t, err)
	must(r.t, r.root.ToFile(r.metaPath(fmt.Sprintf("%d.root.json", r.root.Signed.Version)), false))
}

// writeTargets signs a targets role with k (the role's own key, or an attacker's) and
// writes N.ROLE.json.
func (r *testRepo) writeTargets(role string, md *metadata.Metadata[metadata.TargetsType], k ed25519.PrivateKey) {
	md.ClearSignatures()
	_, err := md.Sign(signer(r.t, k))
	must(r.t, err)
	must(r.t, md.ToFile(r.metaPath(fmt.Sprintf("%d.%s.json", md.Signed.Version, role)), false))
}

// writeSnapshotTimestamp publishes a new snapshot naming the current version of every
// targets role, and a new timestamp naming that snapshot, signed by the online keys.
func (r *testRepo) writeSnapshotTimestamp() {
	r.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	for _, m := range r.models {
		r.snapshot.Signed.Meta[m+".json"] = metadata.MetaFile(r.roles[m].Signed.Version)
	}
	r.writeSnapshotOnly()
	r.timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshot.Signed.Version)
	r.timestamp.Signed.Version++
	r.timestamp.Signed.Expires = r.now.Add(day)
	r.writeTimestamp()
}

func (r *testRepo) writeSnapshotOnly() {
	r.snapshot.Signed.Version++
	r.snapshot.ClearSignatures()
	_, err := r.snapshot.Sign(signer(r.t, r.keys[metadata.SNAPSHOT]))
	must(r.t, err)
	must(r.t, r.snapshot.ToFile(r.metaPath(fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version)), false))
}

func (r *testRepo) writeTimestamp() {
	r.timestamp.ClearSignatures()
	_, err := r.timestamp.Sign(signer(r.t, r.keys[metadata.TIMESTAMP]))
	must(r.t, err)
	must(r.t, r.timestamp.ToFile(r.metaPath("timestamp.json"), false))
}

// addRelease stores a target file of model and lists it in the model's role, signed by the
// model's key, then publishes a snapshot and timestamp. It returns the target path.
func (r *testRepo) addRelease(model, version, name string, data []byte) string {
	return r.listTarget(model, model, version, name, data, r.keys[model])
}

// listTarget stores MODEL/VERSION/NAME and lists it in role (signed with k), then publishes.
func (r *testRepo) listTarget(role, model, version, name string, data []byte, k ed25519.PrivateKey) string {
	tp := path.Join(model, version, name)
	tf, err := metadata.TargetFile().FromBytes(tp, data, "sha256")
	must(r.t, err)
	sum := sha256.Sum256(data)
	file := r.targetFile(tp, hex.EncodeToString(sum[:]))
	must(r.t, os.MkdirAll(filepath.Dir(file), 0o700))
	must(r.t, os.WriteFile(file, data, 0o600))
	md := r.targets
	if role != metadata.TARGETS {
		md = r.roles[role]
	}
	md.Signed.Targets[tp] = tf
	md.Signed.Version++
	r.writeTargets(role, md, k)
	r.writeSnapshotTimestamp()
	return tp
}

// targetFile is where target tp with the given sha256 lives on disk.
func (r *testRepo) targetFile(tp, sha string) string {
	dir, base := path.Split(tp)
	return filepath.Join(r.dir, "targets", filepath.FromSlash(dir), sha+"."+base)
}

// servedFile is the file on disk that the server serves for target tp.
func (r *testRepo) servedFile(tp string) string {
	for _, m := range append([]string{metadata.TARGETS}, r.models...) {
		md := r.targets
		if m != metadata.TARGETS {
			md = r.roles[m]
		}
		if tf, ok := md.Signed.Targets[tp]; ok {
			return r.targetFile(tp, hex.EncodeToString(tf.Hashes["sha256"]))
		}
	}
	r.t.Fatalf("target %s is not in the repository", tp)
	return ""
}

// testServer is an HTTPS server that requires a client certificate from its test CA and
// serves a repository directory under /updates/ in the Vitalgate layout, plus the offer and
// report endpoints of the wire contract. It stands where the real Vitalgate server will
// (see updateServer).
type testServer struct {
	srv  *httptest.Server
	ca   *x509.Certificate
	caK  *ecdsa.PrivateKey
	pool *x509.CertPool

	offer    atomic.Pointer[[]byte] // nil: 204
	failNext atomic.Int32           // answer 503 to this many requests first
	notFound atomic.Bool            // answer 404 to everything: a server without updates
	chunked  atomic.Bool            // send targets without Content-Length
	endless  atomic.Bool            // answer every target request with an endless body
	requests atomic.Int64

	mu      sync.Mutex
	reports [][]byte
	hits    map[string]int
}

// updateServer is what the client tests use of a server: where it is and a device client
// for it. testServer implements it over a testRepo; an e2e test implements it over the real
// httpapi server and `vitalgate update publish` data.
type updateServer interface {
	URL() string
	DeviceClient(t testing.TB) *http.Client
}

func newTestServer(t testing.TB, repoDir string) *testServer {
	t.Helper()
	s := &testServer{hits: map[string]int{}}
	s.ca, s.caK = newCA(t)
	s.pool = x509.NewCertPool()
	s.pool.AddCert(s.ca)
	files := http.StripPrefix("/updates/", http.FileServer(http.Dir(repoDir)))
	mux := http.NewServeMux()
	mux.Handle("GET /updates/metadata/", files)
	mux.Handle("GET /updates/targets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.endless.Load():
			chunk := make([]byte, 32<<10)
			for {
				if _, err := w.Write(chunk); err != nil {
					return // the client hung up
				}
			}
		case s.chunked.Load():
			files.ServeHTTP(noLength{w}, r)
		default:
			files.ServeHTTP(w, r)
		}
	}))
	mux.HandleFunc("GET /updates/offer", func(w http.ResponseWriter, _ *http.Request) {
		o := s.offer.Load()
		if o == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*o)
	})
	mux.HandleFunc("POST /updates/report", func(w http.ResponseWriter, r *http.Request) {
		var b [4096]byte
		n, _ := r.Body.Read(b[:])
		s.mu.Lock()
		s.reports = append(s.reports, append([]byte(nil), b[:n]...))
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "client certificate required", http.StatusUnauthorized)
			return
		}
		if s.notFound.Load() {
			http.NotFound(w, r)
			return
		}
		if s.failNext.Load() > 0 && s.failNext.Add(-1) >= 0 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	s.srv.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    s.pool,
		Certificates: []tls.Certificate{s.issue(t, "127.0.0.1", true)},
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *testServer) URL() string { return s.srv.URL }

func (s *testServer) hitsOf(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[p]
}

// DeviceClient returns a client that presents a device certificate issued by the test CA.
func (s *testServer) DeviceClient(t testing.TB) *http.Client {
	return s.client(t, []tls.Certificate{s.issue(t, "device-1", false)})
}

func (s *testServer) client(_ testing.TB, certs []tls.Certificate) *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: s.pool, Certificates: certs}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func newCA(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(day),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	must(t, err)
	c, err := x509.ParseCertificate(der)
	must(t, err)
	return c, k
}

var serial atomic.Int64

// issue returns a certificate from the test CA: a server one for an IP, or a device one.
func (s *testServer) issue(t testing.TB, name string, server bool) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1) + 1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(day),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP(strings.TrimSpace(name))}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, &k.PublicKey, s.caK)
	must(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// noLength drops the Content-Length header, so the body is sent chunked.
type noLength struct{ http.ResponseWriter }

func (n noLength) WriteHeader(code int) {
	n.Header().Del("Content-Length")
	n.ResponseWriter.WriteHeader(code)
}

func (n noLength) Write(b []byte) (int, error) {
	n.Header().Del("Content-Length")
	return n.ResponseWriter.Write(b)
}
