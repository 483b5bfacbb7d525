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
// same frames over the same TLS settings. Every message is new (a new control id, so new
// OBX identifiers, and observation times of the moment it is sent), so every one is
// stored: the rows are counted in the store, with the bytes the database grew by. A second
// run retransmits messages already stored, which Vitalgate recognises and does not store
// again (its own rows).
func (b *benchRun) benchHL7(ctx context.Context) ([]Row, error) {
	devs, err := b.enrolledDevices(ctx)
	if err != nil {
		return nil, err
	}
	devs = b.mllpDevices(devs)
	srv := b.srv
	if srv.mllpAddr == "" {
		return nil, errors.New("the server was started without MLLP")
	}
	unique, obsPerMsg := b.uniquePCD01(devs)
	p := srv.probe()
	since := time.Now().Add(-time.Second)
	before, err := p.counts(ctx, since, true)
	if err != nil {
		return nil, err
	}
	call, closeAll := b.mllpExchange(srv, devs, srv.mllpAddr, true, unique)
	fig, cnt, err := b.loadCounted(ctx, srv, "hl7, unique messages (Vitalgate)", "msgs", len(devs), call)
	closeAll()
	if err != nil {
		return nil, err
	}
	after, err := p.counts(ctx, since, true)
	if err != nil {
		return nil, err
	}
	grown := after.Sub(before)
	echoAddr, stopEcho, err := srv.startEcho()
	if err != nil {
		return nil, err
	}
	call, closeAll = b.mllpExchange(srv, devs, echoAddr, false, unique)
	base := b.load(ctx, "hl7 baseline (MLLP echo)", "msgs", len(devs), call)
	closeAll()
	stopEcho()

	// Retransmissions: 8 messages per device, stored first, then sent again and again.
	frames := make([][][]byte, len(devs))
	for i, d := range devs {
		for k := range 8 {
			msg, err := simulator.NewPCD01(d.gen.Next(), d.id, d.patient, time.Now().Add(-time.Duration(8-k)*time.Second), fmt.Sprintf("R%d-%d-%d", i, k, b.seq.Add(1)))
			if err != nil {
				return nil, err
			}
			frames[i] = append(frames[i], msg)
		}
	}
	next := make([]int, len(devs))
	resend := func(w int) []byte {
		f := frames[w][next[w]%len(frames[w])]
		next[w]++
		return f
	}
	call, closeAll = b.mllpExchange(srv, devs, srv.mllpAddr, true, resend)
	// Each message is stored once before the measured run, so that it measures only
	// retransmissions.
	var wg sync.WaitGroup
	firstErrs := make([]error, len(devs))
	for w := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range frames[w] {
				if _, err := call(ctx, w); err != nil && firstErrs[w] == nil {
					firstErrs[w] = err
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(firstErrs...); err != nil {
		closeAll()
		return nil, fmt.Errorf("hl7: first sending of the retransmitted messages: %w", err)
	}
	rfig, rcnt, err := b.loadCounted(ctx, srv, "hl7, retransmissions (Vitalgate)", "msgs", len(devs), call)
	closeAll()
	if err != nil {
		return nil, err
	}

	const bn = "MLLP echo, same TLS"
	stored := storedObsRow("hl7", fig, cnt)
	stored.Metric = fmt.Sprintf("stored obs/s, unique messages of %d obs (rows counted in the store)", obsPerMsg)
	stored.Note += fmt.Sprintf(" (messages of %d obs)", obsPerMsg)
	if b.batch > 0 {
		stored.Target = AtLeast(0.5 * b.batch)
		stored.Note += fmt.Sprintf("; target: 0.5 × this run's ingest-batch %.0f stored obs/s", b.batch)
	}
	acked := fig.AllUnits * int64(obsPerMsg) // units are messages
	rows := []Row{{Scenario: "hl7", Metric: fmt.Sprintf("unique PCD-01 messages/s answered AA, %d devices, %d obs each", len(devs), obsPerMsg),
		Unit: "msgs/s", Value: fig.CallRate(), Baseline: base.CallRate(), BaselineName: bn, Note: errorNote(fig)},
		stored,
		{Scenario: "hl7", Metric: "obs acknowledged but not stored (recognised as resends), whole run", Unit: "obs", Value: float64(max(acked-cnt.Run.Observations, 0)),
			Note: fmt.Sprintf("%d obs acknowledged AA in the whole run (warm-up included), %d rows added", acked, cnt.Run.Observations)},
	}
	rows = append(rows, latencyRows("hl7", bn, fig, &base, AtMost(25))...)
	if grown.Observations > 0 {
		rows = append(rows, Row{Scenario: "hl7", Metric: "database bytes per stored observation (files after a checkpoint / rows)", Unit: "bytes",
			Value: float64(grown.Bytes) / float64(grown.Observations), Lower: true, Target: AtMost(1536),
			Note: fmt.Sprintf("%s grew by %d bytes for %d Observation rows and %d audit entries (sealed body, indexes, audit entry)",
				storeName(srv.store.Driver), grown.Bytes, grown.Observations, grown.Audit)})
	}
	rr := Row{Scenario: "hl7", Metric: "retransmitted messages/s answered AA (recognised, nothing stored)", Unit: "msgs/s",
		Value: rfig.CallRate(), Note: countNote(rcnt)}
	if rcnt.Run.Observations != 0 {
		rr.Note += "; retransmissions were STORED again"
	}
	return append(rows, rr), nil
}

// storeName names a store driver for a note.
func storeName(driver string) string {
	if driver == "postgres" {
		return "the PostgreSQL schema"
	}
	return "vitalgate.db (with its WAL)"
}

// mllpPerAddr is how many devices connect from one loopback address: the MLLP listener
// keeps its production limit of connections per address (mllp.DefaultMaxConnsPerIP).
const mllpPerAddr = mllp.DefaultMaxConnsPerIP / 2

// mllpDevices returns as many of devs as the MLLP listener's connection limit admits.
func (b *benchRun) mllpDevices(devs []*benchDevice) []*benchDevice {
	if maxDevs := mllp.DefaultMaxConns - mllpPerAddr; len(devs) > maxDevs {
		b.note(fmt.Sprintf("hl7: %d devices of %d, the MLLP listener's connection limit.", maxDevs, len(devs)))
		devs = devs[:maxDevs]
	}
	return devs
}

// uniquePCD01 returns a frame source of new messages: for worker w, a PCD-01 message of
// device w's next readings, observed now, under a control id never used before in the run.
func (b *benchRun) uniquePCD01(devs []*benchDevice) (func(w int) []byte, int) {
	obsPerMsg := simulator.PCD01Count(devs[0].gen.Next())
	return func(w int) []byte {
		d := devs[w]
		msg, err := simulator.NewPCD01(d.gen.Next(), d.id, d.patient, time.Now(), fmt.Sprintf("U%d-%d", w, b.seq.Add(1)))
		if err != nil {
			panic(err) // the readings come from the simulator's own generator
		}
		return msg
	}, obsPerMsg
}

// mllpExchange returns a call that sends frame(w) from device w over its own kept-open
// MLLP/TLS connection to addr and reads the acknowledgement (which must be AA if wantAA),
// and a function that closes the connections.
func (b *benchRun) mllpExchange(srv *benchServer, devs []*benchDevice, addr string, wantAA bool, frame func(w int) []byte) (Call, func()) {
	conns := make([]net.Conn, len(devs))
	readers := make([]*mllp.Reader, len(devs))
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}
	return func(ctx context.Context, w int) (int, error) {
		if conns[w] == nil {
			// Devices come from distinct loopback addresses, mllpPerAddr of them from
			// each, as from a ward.
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
		if err := mllp.WriteFrame(c, frame(w)); err != nil {
			return fail(err)
		}
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
