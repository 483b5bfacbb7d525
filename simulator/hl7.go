package simulator

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/mllp"
)

// maxAckBytes bounds the size of an acknowledgement frame the simulator reads.
const maxAckBytes = 1 << 20

// hl7Conn is a device's persistent MLLP over TLS connection.
type hl7Conn struct {
	conn net.Conn
	r    *mllp.Reader
	cert *tls.Certificate // the client certificate it was opened with
}

// ack is the part of an HL7 acknowledgement the simulator reads.
type ack struct {
	code        string // MSA-1
	diagnostics string // ERR-8 of the first ERR, else MSA-3, else the ERR-3 text
}

// sendHL7 sends one round of readings as one PCD-01 ORU^R01 message and classifies its ACK:
// AA accepts every observation of the message, AE and AR reject them all (with the ERR-8
// text as diagnostics), and anything else (no answer, a timeout, an unparseable answer, an
// ACK for another message, another code) fails them all with an error.
func (d *Device) sendHL7(ctx context.Context) (Result, error) {
	var res Result
	id, err := d.controlID()
	if err != nil {
		return res, err
	}
	var msg []byte
	var n int
	if d.conf.Kind == KindBloodGas {
		n = BloodGasCount
		msg, err = NewBloodGasORU(d.gen, d.conf.ID, d.conf.PatientID, d.s.Now(), id)
	} else {
		readings := d.gen.Next()
		n = PCD01Count(readings)
		msg, err = NewPCD01(readings, d.conf.ID, d.conf.PatientID, d.s.Now(), id)
	}
	if err != nil {
		return res, err
	}
	a, err := d.exchangeHL7(ctx, msg, id)
	if err != nil {
		res.add(failed, n)
		return res, fmt.Errorf("simulator: device %s: HL7 %s: %w", d.conf.ID, id, err)
	}
	switch a.code {
	case hl7v2.AckAA:
		res.add(accepted, n)
	case hl7v2.AckAE, hl7v2.AckAR:
		res.add(rejected, n)
		res.Diagnostics = a.diagnostics
	default:
		res.add(failed, n)
		return res, fmt.Errorf("simulator: device %s: HL7 %s: unexpected acknowledgement code %q", d.conf.ID, id, a.code)
	}
	return res, nil
}

// controlID returns a fresh message control id (MSH-10): 24 random hex digits.
func (d *Device) controlID() (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(d.s.Rand, b[:]); err != nil {
		return "", fmt.Errorf("simulator: control id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// exchangeHL7 sends msg on the device's connection and returns its acknowledgement. A
// connection that fails is closed. When a reused connection turns out to be gone (closed by
// the server while idle: EOF or reset, no ACK), the same message, with the same control id, is
// sent once more on a new connection: HL7 original mode has the sender retransmit a message
// it got no ACK for, and the receiver recognise the retransmission by its control id.
func (d *Device) exchangeHL7(ctx context.Context, msg []byte, controlID string) (ack, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := d.hl7Connection(ctx)
		if err != nil {
			return ack{}, err
		}
		a, err := d.roundTrip(ctx, c, msg, controlID)
		if err == nil {
			return a, nil
		}
		d.dropHL7(c)
		if !reused || attempt > 0 || ctx.Err() != nil || !connectionLost(err) {
			return ack{}, err
		}
	}
}

// connectionLost reports whether err means the peer had closed the connection.
func connectionLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// hl7Connection returns the device's open connection (reused true), or opens one: TCP to
// Config.HL7Addr, then a TLS 1.3 handshake that verifies the server against the CA given out
// of band and presents the current device certificate. A connection opened with an older
// certificate (before a re-enrollment) is closed and replaced.
func (d *Device) hl7Connection(ctx context.Context) (c *hl7Conn, reused bool, err error) {
	cert := d.cert.Load()
	if cert == nil {
		return nil, false, ErrNotEnrolled
	}
	d.hl7Mu.Lock()
	defer d.hl7Mu.Unlock()
	if d.hl7 != nil {
		if d.hl7.cert == cert {
			return d.hl7, true, nil
		}
		_ = d.hl7.conn.Close()
		d.hl7 = nil
	}
	host, _, err := net.SplitHostPort(d.s.HL7Addr)
	if err != nil {
		return nil, false, err
	}
	dialer := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: d.s.HL7Timeout, KeepAlive: 30 * time.Second},
		Config: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			RootCAs:      d.s.CAPool,
			ServerName:   host,
			Certificates: []tls.Certificate{*cert},
			Time:         d.s.Now,
		},
	}
	dctx, cancel := context.WithTimeout(ctx, d.s.HL7Timeout)
	defer cancel()
	conn, err := dialer.DialContext(dctx, "tcp", d.s.HL7Addr)
	if err != nil {
		return nil, false, fmt.Errorf("connecting to %s: %w", d.s.HL7Addr, err)
	}
	d.hl7 = &hl7Conn{conn: conn, r: mllp.NewReader(conn, maxAckBytes), cert: cert}
	return d.hl7, false, nil
}

// dropHL7 closes c and forgets it if it is still the device's connection.
func (d *Device) dropHL7(c *hl7Conn) {
	d.hl7Mu.Lock()
	defer d.hl7Mu.Unlock()
	_ = c.conn.Close()
	if d.hl7 == c {
		d.hl7 = nil
	}
}

// closeHL7 closes the device's connection, if any.
func (d *Device) closeHL7() {
	d.hl7Mu.Lock()
	defer d.hl7Mu.Unlock()
	if d.hl7 != nil {
		_ = d.hl7.conn.Close()
		d.hl7 = nil
	}
}

// roundTrip writes msg as one MLLP frame and reads the ACK frame, within HL7Timeout and until
// ctx is done, and checks that the ACK acknowledges controlID.
func (d *Device) roundTrip(ctx context.Context, c *hl7Conn, msg []byte, controlID string) (ack, error) {
	if err := c.conn.SetDeadline(time.Now().Add(d.s.HL7Timeout)); err != nil {
		return ack{}, err
	}
	// Cancelling ctx interrupts the exchange: a deadline in the past fails pending I/O.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	a, err := func() (ack, error) {
		if err := mllp.WriteFrame(c.conn, msg); err != nil {
			return ack{}, fmt.Errorf("writing the message: %w", err)
		}
		payload, err := c.r.ReadFrame()
		if err != nil {
			return ack{}, fmt.Errorf("reading the acknowledgement: %w", err)
		}
		return parseAck(payload, controlID)
	}()
	if !stop() && err == nil {
		// ctx ended just as the exchange completed: the deadline may be in the past now, so
		// the connection cannot be trusted for the next message.
		d.dropHL7(c)
	}
	if err != nil && ctx.Err() != nil {
		return ack{}, fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return a, err
}

// parseAck parses an ACK and checks that MSA-2 is controlID.
func parseAck(payload []byte, controlID string) (ack, error) {
	m, err := hl7v2.Parse(payload, hl7v2.Limits{})
	if err != nil {
		return ack{}, fmt.Errorf("the acknowledgement does not parse: %w", err)
	}
	msa := m.Segment("MSA")
	if msa == nil {
		return ack{}, errors.New("the acknowledgement has no MSA segment")
	}
	if got := msa.Field(2).Value(); got != controlID {
		return ack{}, fmt.Errorf("the acknowledgement is for message %q", got)
	}
	a := ack{code: msa.Field(1).Value()}
	errSeg := m.Segment("ERR")
	switch {
	case errSeg.Field(8).Value() != "":
		a.diagnostics = errSeg.Field(8).Value()
	case msa.Field(3).Value() != "":
		a.diagnostics = msa.Field(3).Value()
	default:
		a.diagnostics = errSeg.Field(3).Rep(1).Comp(2).Value()
	}
	return a, nil
}
