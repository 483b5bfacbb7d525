package mllp_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/mllp"
)

const (
	sb = "\x0b"
	eb = "\x1c\r"
)

// readAll reads frames until io.EOF or a non-recoverable error, recording each outcome:
// the payload, or "!" followed by the sentinel name for a frame error.
func readAll(t testing.TB, r *mllp.Reader) (out []string, last error) {
	t.Helper()
	for range 1000 {
		p, err := r.ReadFrame()
		switch {
		case err == nil:
			out = append(out, string(p))
		case errors.Is(err, mllp.ErrFrameTooLarge):
			out = append(out, "!toolarge")
		case errors.Is(err, mllp.ErrFraming):
			out = append(out, "!framing")
		default:
			return out, err
		}
	}
	t.Fatal("reader does not end")
	return nil, nil
}

func TestReader(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		max       int
		want      []string
		last      error
		discarded int64
	}{
		{"one frame", sb + "MSH|a" + eb, 0, []string{"MSH|a"}, io.EOF, 0},
		{"two frames", sb + "A" + eb + sb + "B" + eb, 0, []string{"A", "B"}, io.EOF, 0},
		{"empty stream", "", 0, nil, io.EOF, 0},
		{"garbage between frames counted", "xx" + sb + "A" + eb + "\r\nyyy" + sb + "B" + eb + "zz", 0, []string{"A", "B"}, io.EOF, 2 + 5 + 2},
		{"empty payload", sb + eb, 0, []string{""}, io.EOF, 0},
		{"missing CR before next frame", sb + "A\x1c" + sb + "B" + eb, 0, []string{"A", "B"}, io.EOF, 0},
		{"missing CR at end of stream", sb + "A\x1c", 0, []string{"A"}, io.EOF, 0},
		{"end block followed by garbage", sb + "A\x1cX" + sb + "B" + eb, 0, []string{"!framing", "B"}, io.EOF, 4},
		{"truncated frame", sb + "ABC", 0, nil, io.ErrUnexpectedEOF, 4},
		{"restart inside frame", sb + "AB" + sb + "C" + eb, 0, []string{"C"}, io.EOF, 3},
		{"oversize then resync", sb + "ABCDEFGH" + eb + sb + "OK" + eb, 4, []string{"!toolarge", "OK"}, io.EOF, 1 + 4 + 1 + 3 + 2},
		{"exactly max", sb + "ABCD" + eb, 4, []string{"ABCD"}, io.EOF, 0},
		{"CR and LF inside payload kept", sb + "MSH|a\rPID|1\n" + eb, 0, []string{"MSH|a\rPID|1\n"}, io.EOF, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, split := range []struct {
				name string
				r    func(io.Reader) io.Reader
			}{{"whole", func(r io.Reader) io.Reader { return r }}, {"one byte", iotest.OneByteReader}, {"half", iotest.HalfReader}} {
				r := mllp.NewReader(split.r(strings.NewReader(tt.in)), tt.max)
				got, last := readAll(t, r)
				if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
					t.Errorf("%s: frames %q, want %q", split.name, got, tt.want)
				}
				if !errors.Is(last, tt.last) {
					t.Errorf("%s: last error %v, want %v", split.name, last, tt.last)
				}
				if r.Discarded() != tt.discarded {
					t.Errorf("%s: discarded %d, want %d", split.name, r.Discarded(), tt.discarded)
				}
			}
		})
	}
}

func TestReaderErrorCodes(t *testing.T) {
	r := mllp.NewReader(strings.NewReader(sb+"ABCDEFGH"+eb), 2)
	_, err := r.ReadFrame()
	if vitalgate.ErrorCode(err) != vitalgate.ETOOLARGE {
		t.Errorf("oversize: %v", err)
	}
	r = mllp.NewReader(strings.NewReader(sb+"A\x1cZ"), 0)
	_, err = r.ReadFrame()
	if vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("framing: %v", err)
	}
}

func TestWriteFrame(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    string
		bad     bool
	}{
		{"message", "MSH|^~\\&\r", sb + "MSH|^~\\&\r" + eb, false},
		{"empty", "", sb + eb, false},
		{"start block inside", "A\x0bB", "", true},
		{"end block inside", "A\x1cB", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := mllp.WriteFrame(&b, []byte(tt.payload))
			if tt.bad {
				if vitalgate.ErrorCode(err) != vitalgate.EINVALID || b.Len() != 0 {
					t.Fatalf("err %v, wrote %q", err, b.String())
				}
				return
			}
			if err != nil || b.String() != tt.want {
				t.Fatalf("got %q, %v", b.String(), err)
			}
			p, err := mllp.NewReader(&b, 0).ReadFrame()
			if err != nil || string(p) != tt.payload {
				t.Fatalf("read back %q, %v", p, err)
			}
		})
	}
}

// chunkReader returns the data in chunks of the given sizes (cycling).
type chunkReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = int(c.sizes[c.i%len(c.sizes)]) + 1
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzReader checks that the Reader never panics and that frames split at arbitrary read
// boundaries reassemble identically, with the same errors and discard count.
func FuzzReader(f *testing.F) {
	f.Add([]byte(sb+"MSH|a"+eb+"xx"+sb+"B"+eb), []byte{3, 1}, uint16(0))
	f.Add([]byte(sb+"ABCDEFGH"+eb+sb+"OK"+eb), []byte{0}, uint16(4))
	f.Add([]byte(sb+"A\x1cX"+sb+"B\x1c"), []byte{7, 2, 9}, uint16(2))
	f.Fuzz(func(t *testing.T, data, sizes []byte, max uint16) {
		whole, wholeErr := readAll(t, mllp.NewReader(bytes.NewReader(data), int(max)))
		rc := mllp.NewReader(&chunkReader{data: data, sizes: sizes}, int(max))
		split, splitErr := readAll(t, rc)
		if len(whole) != len(split) {
			t.Fatalf("frames differ: %q vs %q", whole, split)
		}
		for i := range whole {
			if whole[i] != split[i] {
				t.Fatalf("frame %d differs: %q vs %q", i, whole[i], split[i])
			}
		}
		if !errors.Is(splitErr, wholeErr) && wholeErr != splitErr {
			t.Fatalf("errors differ: %v vs %v", wholeErr, splitErr)
		}
		var out bytes.Buffer
		for _, p := range whole {
			if !strings.HasPrefix(p, "!") && mllp.WriteFrame(&out, []byte(p)) != nil {
				t.Fatalf("cannot rewrite frame %q", p)
			}
		}
	})
}
