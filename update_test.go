package vitalgate_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vitalgate/vitalgate"
)

// TestUpdateChunksRoundTrip splits target files of the sizes around a chunk boundary with
// EachUpdateChunk and reassembles them with CopyUpdateChunks, as the stores do.
func TestUpdateChunksRoundTrip(t *testing.T) {
	const size = vitalgate.UpdateChunkSize
	for _, n := range []int{0, 1, size - 1, size, size + 1, 2*size + 7} {
		content := make([]byte, n)
		for i := range content {
			content[i] = byte(i % 251)
		}
		var rows [][]byte
		if err := vitalgate.EachUpdateChunk(bytes.NewReader(content), func(seq int, chunk []byte) error {
			if seq != len(rows) || len(chunk) == 0 || len(chunk) > size {
				t.Fatalf("size %d: chunk %d has %d bytes", n, seq, len(chunk))
			}
			rows = append(rows, bytes.Clone(chunk))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if want := (n + size - 1) / size; len(rows) != want {
			t.Fatalf("size %d: %d chunks, want %d", n, len(rows), want)
		}
		var out bytes.Buffer
		total, err := vitalgate.CopyUpdateChunks(&out, func(seq int) ([]byte, error) {
			if seq >= len(rows) {
				return nil, io.EOF
			}
			return rows[seq], nil
		})
		if err != nil || total != int64(n) || !bytes.Equal(out.Bytes(), content) {
			t.Fatalf("size %d: copied %d bytes, err %v, equal %v", n, total, err, bytes.Equal(out.Bytes(), content))
		}
	}
}

// TestUpdateChunkErrors: an error of the reader, the row writer or the row reader stops the
// copy and is returned as it is.
func TestUpdateChunkErrors(t *testing.T) {
	broken := errors.New("disk gone")
	if err := vitalgate.EachUpdateChunk(io.MultiReader(bytes.NewReader([]byte("abc")), iotestErr{broken}), func(int, []byte) error { return nil }); !errors.Is(err, broken) {
		t.Fatalf("reader error: %v", err)
	}
	if err := vitalgate.EachUpdateChunk(bytes.NewReader([]byte("abc")), func(int, []byte) error { return broken }); !errors.Is(err, broken) {
		t.Fatalf("row error: %v", err)
	}
	n, err := vitalgate.CopyUpdateChunks(io.Discard, func(seq int) ([]byte, error) {
		if seq == 1 {
			return nil, broken
		}
		return []byte("abc"), nil
	})
	if !errors.Is(err, broken) || n != 3 {
		t.Fatalf("read error: %d bytes, %v", n, err)
	}
}

type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }
