package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/node"
	"github.com/vitalgate/vitalgate/pki"
)

// benchConnections measures the server's memory per idle connected device: --connections
// devices (registered with certificates issued by the CA, as EST would issue them) each
// open one mutual TLS connection, make one request (GET /fhir/metadata) and keep the
// connection idle. The clients run in a child process, so that this process's heap, stacks
// and resident set grow by the server's share only.
func (b *benchRun) benchConnections(ctx context.Context) ([]Row, error) {
	srv, err := b.server(ctx)
	if err != nil {
		return nil, err
	}
	count := b.opt.Connections
	if limit := fileLimit(); uint64(count)+512 > limit { // #nosec G115 -- count is a positive flag value
		count = int(limit) - 512 // #nosec G115 -- limit < count+512, a small int
		b.note(fmt.Sprintf("connections: RLIMIT_NOFILE is %d, so %d connections were measured instead of %d.", limit, count, b.opt.Connections))
		if count < 1 {
			return nil, fmt.Errorf("RLIMIT_NOFILE %d is too low", limit)
		}
	}
	dir := filepath.Join(b.tmp, "idle")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	if err := b.provisionIdleDevices(ctx, srv.n, dir, count); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	before := ReadProcessMemory()
	cmd := exec.CommandContext(ctx, exe, "bench", "--idle-clients", dir, "--idle-addr", strings.TrimPrefix(srv.url, "https://"), "--connections", fmt.Sprint(count)) // #nosec G204 -- this binary
	var childErr bytes.Buffer                                                                                                                                        // the child's own: written only by exec's copying goroutine
	cmd.Stderr = &childErr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil && childErr.Len() > 0 {
			fmt.Fprintf(b.opt.Stderr, "\nidle clients: %s\n", strings.TrimSpace(childErr.String()))
		}
	}()
	sc := bufio.NewScanner(stdout)
	connected, failed := 0, 0
	var firstErr string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "connected" {
			connected, _ = strconv.Atoi(f[1])
			b.progress("   opening idle mutual TLS connections: %d/%d (%.0f/s)", connected, count, float64(connected)/time.Since(start).Seconds())
		}
		if len(f) >= 3 && f[0] == "ready" {
			connected, _ = strconv.Atoi(f[1])
			failed, _ = strconv.Atoi(f[2])
			firstErr = strings.Join(f[3:], " ")
			break
		}
	}
	connectTime := time.Since(start)
	if connected == 0 {
		return nil, fmt.Errorf("no idle connection could be opened: %s", firstErr)
	}
	b.done("%d idle connections open in %s (%.0f handshakes+requests/s), %d failed %s", connected, connectTime.Round(100*time.Millisecond),
		float64(connected)/connectTime.Seconds(), failed, firstErr)
	b.progress("   letting the connections settle ...")
	time.Sleep(3 * time.Second)
	after := ReadProcessMemory()
	b.clearProgress()
	per := func(a, z uint64) float64 { return (float64(z) - float64(a)) / float64(connected) / 1024 }
	heap := per(before.HeapAlloc+before.StackInuse, after.HeapAlloc+after.StackInuse)
	rss := per(before.RSS, after.RSS)
	b.done("heap+stacks %.1f KiB and RSS %.1f KiB per connection; %.2f goroutines per connection", heap, rss,
		float64(after.Goroutines-before.Goroutines)/float64(connected))
	scale := fmt.Sprintf("%d idle devices", connected)
	note := ""
	if failed > 0 {
		note = fmt.Sprintf("%d connections failed: %s", failed, firstErr)
	}
	return []Row{
		{Scenario: "connections", Metric: "server heap+stacks per idle connection, " + scale, Unit: "KiB", Value: heap, Lower: true, Target: AtMost(50), Note: note},
		{Scenario: "connections", Metric: "server RSS per idle connection, " + scale, Unit: "KiB", Value: rss, Lower: true, Target: AtMost(50)},
		{Scenario: "connections", Metric: "server goroutines per idle connection", Unit: "goroutines", Value: float64(after.Goroutines-before.Goroutines) / float64(connected), Lower: true},
		{Scenario: "connections", Metric: "connection setup (mutual TLS, registry check, one request)", Unit: "conns/s", Value: float64(connected) / connectTime.Seconds()},
	}, nil
}

// provisionIdleDevices registers count devices with a certificate each, issued by the CA
// from a CSR exactly as EST issues it, and writes the certificates and keys (PEM) and the
// CA certificate to dir for the client process.
func (b *benchRun) provisionIdleDevices(ctx context.Context, n *node.Node, dir string, count int) error {
	type cred struct{ cert, key []byte }
	creds := make([]cred, count)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		done     int
		firstErr error
	)
	start := time.Now()
	work := make(chan int)
	for range 2 * runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, err := b.provisionIdleDevice(ctx, n, fmt.Sprintf("bench-idle-%05d", i+1))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				creds[i] = c
				done++
				b.progress("   provisioning idle devices (key, CSR, certificate, registry): %d/%d (%.0f/s)", done, count, float64(done)/time.Since(start).Seconds())
				mu.Unlock()
			}
		}()
	}
	for i := range count {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	var all []byte
	for _, c := range creds {
		all = append(append(all, c.cert...), c.key...)
	}
	if err := os.WriteFile(filepath.Join(dir, "devices.pem"), all, 0o600); err != nil {
		return err
	}
	caPEM, _, err := n.CA.MarshalPEM()
	if err != nil {
		return err
	}
	b.done("%d idle devices provisioned in %s", count, time.Since(start).Round(100*time.Millisecond))
	return os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o600)
}

// provisionIdleDevice registers one device and its certificate and returns the PEM
// certificate and key.
func (b *benchRun) provisionIdleDevice(ctx context.Context, n *node.Node, id string) (c struct{ cert, key []byte }, err error) {
	key, err := pki.GenerateDeviceKey(rand.Reader)
	if err != nil {
		return c, err
	}
	der, err := pki.NewCSR(id, key, rand.Reader)
	if err != nil {
		return c, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return c, err
	}
	now := time.Now().UTC()
	cert, err := n.CA.IssueDevice(csr, id, now, 0, rand.Reader)
	if err != nil {
		return c, err
	}
	now = now.Truncate(time.Microsecond)
	if err := n.Store.CreateDevice(ctx, vitalgate.Device{ID: id, Model: "Vitalgate bench (idle)", Status: vitalgate.DeviceActive,
		PatientIndex: n.Vault.PatientIndex("bench-idle-patient"), CreatedAt: now, UpdatedAt: now}); err != nil {
		return c, err
	}
	if err := n.Store.AddCertificate(ctx, vitalgate.Certificate{Serial: pki.SerialHex(cert), DeviceID: id,
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IssuedAt: now}); err != nil {
		return c, err
	}
	c.cert = pki.MarshalCertPEM(cert)
	c.key, err = pki.MarshalKeyPEM(key)
	return c, err
}

// IdleClients is the client process of the connections scenario: it opens one mutual
// TLS connection per device found in dir (as the simulator's HTTP client does, HTTP/2 when
// offered), makes one request on each, reports "connected N" lines and a final
// "ready N FAILED [first error]" line on standard output, and then keeps the connections
// idle until standard input closes.
func IdleClients(ctx context.Context, dir, addr string, count int, stdout io.Writer) error {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem")) // #nosec G304 -- the parent's temp dir
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no CA certificate")
	}
	data, err := os.ReadFile(filepath.Join(dir, "devices.pem")) // #nosec G304 -- the parent's temp dir
	if err != nil {
		return err
	}
	var certs []tls.Certificate
	for len(data) > 0 {
		var certBlock, keyBlock *pem.Block
		certBlock, data = pem.Decode(data)
		if certBlock == nil {
			break
		}
		keyBlock, data = pem.Decode(data)
		if keyBlock == nil {
			return errors.New("devices.pem: a certificate without its key")
		}
		c, err := tls.X509KeyPair(pem.EncodeToMemory(certBlock), pem.EncodeToMemory(keyBlock))
		if err != nil {
			return err
		}
		certs = append(certs, c)
	}
	if count > len(certs) {
		count = len(certs)
	}
	clients := make([]*http.Client, count)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		connected int
		failed    int
		firstErr  string
	)
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c := benchClient(pool, &certs[i])
				c.Transport.(*http.Transport).IdleConnTimeout = 0 // kept until the process ends
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/fhir/metadata", nil)
				if err == nil {
					_, err = benchDo(c, req, http.StatusOK)
				}
				mu.Lock()
				if err != nil {
					failed++
					if firstErr == "" {
						firstErr = err.Error()
					}
				} else {
					connected++
					clients[i] = c
					if connected%100 == 0 {
						fmt.Fprintf(stdout, "connected %d\n", connected)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range count {
		work <- i
	}
	close(work)
	wg.Wait()
	fmt.Fprintf(stdout, "ready %d %d %s\n", connected, failed, strings.ReplaceAll(firstErr, "\n", " "))
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	closeClients(clients[:0])
	return nil
}
