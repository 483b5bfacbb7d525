// Package mllp implements the Minimal Lower Layer Protocol (MLLP) that carries HL7 v2
// messages over a stream: each message is framed as 0x0B <payload> 0x1C 0x0D.
//
// Reader reads frames with a size limit, discards (and counts) bytes between frames and
// resynchronises on the next start block after an oversized or malformed frame. WriteFrame
// writes one frame. Server accepts connections from a net.Listener (in production a TLS
// listener: it completes the handshake with a timeout before reading, and hands the peer
// certificates to the Handler), enforces per-frame read, idle, write and handshake
// timeouts and connection limits (total and per remote IP), calls the Handler for every
// frame and writes back the acknowledgement it returns. Shutdown stops it gracefully.
package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/vitalgate/vitalgate"
)

// MLLP framing bytes.
const (
	StartBlock     = 0x0B // vertical tab: starts a frame
	EndBlock       = 0x1C // file separator: ends the payload
	CarriageReturn = 0x0D // follows EndBlock
)

// Sentinel causes, matched with errors.Is. The errors returned wrap them in a
// *vitalgate.Error.
var (
	// ErrFrameTooLarge: a frame's payload exceeded the maximum frame size.
	ErrFrameTooLarge = errors.New("mllp: frame too large")
	// ErrFraming: an end block was followed by something other than CR or a start block.
	ErrFraming = errors.New("mllp: malformed frame")
)

// Reader reads MLLP frames from a byte stream.
//
// Bytes before a start block are discarded and counted (Discarded). A frame whose payload
// exceeds the maximum size is abandoned with an ETOOLARGE error wrapping ErrFrameTooLarge;
// the next ReadFrame discards the rest of it up to the next start block. A start block
// inside a payload abandons the frame read so far (counted as discarded) and starts a new
// one. The end block must be followed by CR; Reader also accepts an end block directly
// followed by the next start block or by the end of the stream (a sender that omits the CR
// loses nothing, and the bytes cannot be anything else), but an end block followed by any
// other byte is a framing error (EINVALID wrapping ErrFraming) and the frame is dropped:
// 0x1C cannot occur in an HL7 payload, so guessing would risk accepting a corrupted message.
type Reader struct {
	br        *bufio.Reader
	max       int
	discarded int64
	onStart   func() // called when a start block is read (Server: switch to the frame timeout)
}

// NewReader returns a Reader of r that accepts payloads of up to maxFrameBytes bytes
// (1 MiB if maxFrameBytes <= 0).
func NewReader(r io.Reader, maxFrameBytes int) *Reader {
	if maxFrameBytes <= 0 {
		maxFrameBytes = DefaultMaxFrameBytes
	}
	return &Reader{br: bufio.NewReaderSize(r, 32<<10), max: maxFrameBytes}
}

// Discarded returns the number of bytes discarded so far: garbage between frames and the
// bytes of abandoned frames.
func (r *Reader) Discarded() int64 { return r.discarded }

// ReadFrame returns the payload of the next frame. It returns io.EOF when the stream ends
// between frames, io.ErrUnexpectedEOF when it ends inside a frame, a *vitalgate.Error
// wrapping ErrFrameTooLarge or ErrFraming for a bad frame (the Reader stays usable), and
// the underlying reader's error otherwise.
func (r *Reader) ReadFrame() ([]byte, error) {
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == StartBlock {
			break
		}
		r.discarded++
	}
	if r.onStart != nil {
		r.onStart()
	}
	var buf []byte
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			r.discarded += int64(len(buf)) + 1
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch b {
		case StartBlock:
			r.discarded += int64(len(buf)) + 1
			buf = buf[:0]
			if r.onStart != nil {
				r.onStart()
			}
		case EndBlock:
			next, err := r.br.ReadByte()
			switch {
			case err == io.EOF:
				return buf, nil
			case err != nil:
				r.discarded += int64(len(buf)) + 2
				return nil, err
			case next == CarriageReturn:
				return buf, nil
			case next == StartBlock:
				_ = r.br.UnreadByte()
				return buf, nil
			}
			r.discarded += int64(len(buf)) + 3
			return nil, &vitalgate.Error{Code: vitalgate.EINVALID, Message: "MLLP end block not followed by CR", Err: ErrFraming}
		default:
			if len(buf) >= r.max {
				r.discarded += int64(len(buf)) + 2
				return nil, &vitalgate.Error{Code: vitalgate.ETOOLARGE, Message: "MLLP frame is larger than the limit", Err: ErrFrameTooLarge}
			}
			buf = append(buf, b)
		}
	}
}

// WriteFrame writes payload as one MLLP frame in a single Write. It returns an EINVALID
// *vitalgate.Error, writing nothing, if payload contains a start or end block byte.
func WriteFrame(w io.Writer, payload []byte) error {
	if bytes.IndexByte(payload, StartBlock) >= 0 || bytes.IndexByte(payload, EndBlock) >= 0 {
		return vitalgate.Errorf(vitalgate.EINVALID, "MLLP payload may not contain 0x0B or 0x1C")
	}
	buf := make([]byte, 0, len(payload)+3)
	buf = append(buf, StartBlock)
	buf = append(buf, payload...)
	buf = append(buf, EndBlock, CarriageReturn)
	_, err := w.Write(buf)
	return err
}
