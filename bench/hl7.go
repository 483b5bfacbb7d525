package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate/mllp"
	"github.com/vitalgate/vitalgate/simulator"
)

// benchHL7 measures IHE PCD-01 ORU^R01 messages from every device over MLLP with mutual
// TLS, each answered with an AA acknowledgement once durable, against an MLLP echo of the
// same frames over the same TLS settings.
func (b *benchRun) benchHL7(ctx context.Context) ([]Row, error) {
	devs, err := b.enrolledDevices(ctx)
	if err != nil {
		return nil, err
	}
	const mllpPerAddr = mllp.DefaultMaxConnsPerIP / 2
	if maxDevs := mllp.DefaultMaxConns - mllpPerAddr; len(devs) > maxDevs {
		b.note(fmt.Sprintf("hl7: %d devices of %d, the MLLP listener's connection limit.", maxDevs, len(devs)))
		devs = devs[:maxDevs]
	}
	srv := b.srv
	if srv.mllpAddr == "" {
		return nil, errors.New("the server was started without MLLP")
	}
	frames := make([][][]byte, len(devs))
	obsPerMsg := 0
	for i, d := range devs {
		for k := range 8 {
			readings := d.gen.Next()
			obsPerMsg = simulator.PCD01Count(readings)
			msg, err := simulator.NewPCD01(readings, d.id, d.patient, time.Now().Add(-time.Duration(8-k)*time.Second), fmt.Sprintf("B%d-%d", i, k))
			if err != nil {
				return nil, err
			}
			frames[i] = append(frames[i], msg)
		}
	}
	exchange := func(addr string, wantAA bool) (Call, func()) {
		conns := make([]net.Conn, len(devs))
		readers := make([]*mllp.Reader, len(devs))
		next := make([]int, len(devs))
		closeAll := func() {
			for _, c := range conns {
				if c != nil {
					_ = c.Close()
				}
			}
		}
		return func(ctx context.Context, w int) (int, error) {
			if conns[w] == nil {
				// The MLLP listener keeps its production limit of connections per
				// address (mllp.DefaultMaxConnsPerIP): devices come from distinct
				// loopback addresses, mllpPerAddr of them from each, as from a ward.
				local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+w/mllpPerAddr))} // #nosec G115 -- at most a few hundred devices: 2+w/8 < 255
				d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second, LocalAddr: local}, Config: &tls.Config{
					MinVersion: tls.VersionTLS13, RootCAs: srv.n.CA.Pool(), Certificates: []tls.Certificate{*devs[w].cert}, ServerName: "127.0.0.1"}}
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					return 0, err
				}
				conns[w], readers[w] = c, mllp.NewReader(c, 1<<20)
			}
			c := conns[w]
			fail := func(err error) (int, error) {
				_ = c.Close()
				conns[w] = nil
				return 0, err
			}
			if dl, ok := ctx.Deadline(); ok {
				_ = c.SetDeadline(dl)
			} else {
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			}
			stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
			defer stop()
			if err := mllp.WriteFrame(c, frames[w][next[w]%len(frames[w])]); err != nil {
				return fail(err)
			}
			next[w]++
			ack, err := readers[w].ReadFrame()
			if err != nil {
				return fail(err)
			}
			if wantAA && !bytes.Contains(ack, []byte("MSA|AA|")) {
				return 0, fmt.Errorf("not accepted: %.300q", ack)
			}
			return 1, nil
		}, closeAll
	}
	call, closeAll := exchange(srv.mllpAddr, true)
	fig := b.load(ctx, "hl7 (Vitalgate MLLP/TLS)", "msgs", len(devs), call)
	closeAll()
	echoAddr, stopEcho, err := srv.startEcho()
	if err != nil {
		return nil, err
	}
	call, closeAll = exchange(echoAddr, false)
	base := b.load(ctx, "hl7 baseline (MLLP echo)", "msgs", len(devs), call)
	closeAll()
	stopEcho()
	const bn = "MLLP echo, same TLS"
	rows := []Row{{Scenario: "hl7", Metric: fmt.Sprintf("PCD-01 messages/s answered AA, %d devices, %d obs each", len(devs), obsPerMsg),
		Unit: "msgs/s", Value: fig.CallRate(), Baseline: base.CallRate(), BaselineName: bn, Note: errorNote(fig)}}
	return append(rows, latencyRows("hl7", bn, fig, &base, nil)...), nil
}

// startEcho starts an MLLP echo server over the MLLP listener's TLS settings (client
// certificates required) and returns its address and a stop function.
func (s *benchServer) startEcho() (string, func(), error) {
	tc := s.baselineTLS()
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	tc.NextProtos = nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tl := tls.NewListener(ln, tc)
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				rd := mllp.NewReader(c, 1<<20)
				for {
					frame, err := rd.ReadFrame()
					if err != nil {
						return
					}
					if err := mllp.WriteFrame(c, frame); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() {
		_ = ln.Close()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}, nil
}
