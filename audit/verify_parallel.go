package audit

import (
	"context"
	"runtime"
	"sync"
)

// RangeSource is an EntrySource that also streams a bounded range of entries. Verify reads
// such a source in chunks, several at a time (as many as GOMAXPROCS), and hashes each chunk's
// entries and the perfect subtree over them in the goroutine that read it, so that reading
// and hashing use every CPU; the chunks are then checked in order, with the same results and
// the same errors as a sequential pass. StoreLog implements it.
type RangeSource interface {
	EntrySource
	// EntryRange calls fn for every stored entry with from <= index < to, in index order, as
	// Entries does.
	EntryRange(ctx context.Context, from, to uint64, fn func(index uint64, data []byte, storedLeafHash [HashSize]byte) error) error
}

// verifyChunk is how many entries one read of a RangeSource covers: a power of two, so that a
// whole chunk is a perfect subtree of the log's tree.
var verifyChunk uint64 = 1 << 12

// chunk is what a reader goroutine made of the entries [from, from+verifyChunk).
type chunk struct {
	first  uint64           // index of the first entry read (meaningful when leaves is not empty)
	leaves [][HashSize]byte // leaf hashes of the entries read in order, up to any fault
	bytes  uint64           // their bytes
	root   [HashSize]byte   // the perfect subtree over the whole chunk, when full
	full   bool             // every entry of the chunk read, in order, without a fault
	// archived is how many of the leaves are of archived entries (they come first); live is
	// whether any is not.
	archived uint64
	live     bool
	verr     *VerifyError // the fault found after leaves (a gap, a repeat, a changed entry)
	err      error        // a read error
}

// readChunk reads and hashes the entries [from, to) of src.
func readChunk(ctx context.Context, src RangeSource, from, to uint64, leaves [][HashSize]byte) *chunk {
	c := &chunk{leaves: leaves[:0]}
	next := from
	err := src.EntryRange(ctx, from, to, func(index uint64, data []byte, stored [HashSize]byte) error {
		if len(c.leaves) == 0 {
			c.first, next = index, index
		}
		if index != next {
			c.verr = gapError(next, index)
			return errStop
		}
		h, archived, verr := leafOf(index, data, stored)
		if verr == nil && archived && c.live {
			verr = notPrefix(index)
		}
		if verr != nil {
			c.verr = verr
			return errStop
		}
		if archived {
			c.archived++
		} else {
			c.live = true
		}
		c.leaves = append(c.leaves, h)
		c.bytes += uint64(len(data))
		next++
		return nil
	})
	if err != nil && err != errStop {
		c.err = err
		return c
	}
	if c.verr == nil && uint64(len(c.leaves)) == to-from && c.first == from && to-from == verifyChunk {
		c.full = true
		c.root = perfectRoot(c.leaves)
	}
	return c
}

// perfectRoot returns the Merkle tree hash of a power-of-two number of leaves.
func perfectRoot(leaves [][HashSize]byte) [HashSize]byte {
	level := make([][HashSize]byte, len(leaves)/2)
	for i := range level {
		level[i] = NodeHash(leaves[2*i], leaves[2*i+1])
	}
	for len(level) > 1 {
		for i := range len(level) / 2 {
			level[i] = NodeHash(level[2*i], level[2*i+1])
		}
		level = level[:len(level)/2]
	}
	return level[0]
}

// appendPerfect adds a perfect subtree of 2^height leaves, given by its root, to a tree whose
// size is a multiple of 2^height: the same tree as appending the leaves one by one.
func (t *Tree) appendPerfect(root [HashSize]byte, height uint) {
	h := root
	for s := t.size >> height; s&1 == 1; s >>= 1 {
		n := len(t.stack) - 1
		h = NodeHash(t.stack[n], h)
		t.stack = t.stack[:n]
	}
	t.stack = append(t.stack, h)
	t.size += 1 << height
}

// chunks reads [0, total) of src in chunks of verifyChunk from several goroutines and calls
// fn with each chunk in order, stopping at the first error fn returns (or when ctx ends).
// At most a few chunks are held at a time.
func chunks(ctx context.Context, src RangeSource, total uint64, fn func(*chunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	workers := max(runtime.GOMAXPROCS(0), 1)
	n := (total + verifyChunk - 1) / verifyChunk
	results := make([]chan *chunk, n)
	for i := range results {
		results[i] = make(chan *chunk, 1)
	}
	// free recycles the leaf buffers of checked chunks; tokens bound the chunks in flight.
	free := make(chan [][HashSize]byte, workers+2)
	tokens := make(chan struct{}, workers+2)
	var next uint64 // the next chunk to read, under mu
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					<-tokens
					return
				}
				var buf [][HashSize]byte
				select {
				case buf = <-free:
				default:
					buf = make([][HashSize]byte, 0, verifyChunk)
				}
				from := i * verifyChunk
				results[i] <- readChunk(ctx, src, from, min(from+verifyChunk, total), buf)
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i := range results {
		var c *chunk
		select {
		case c = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := fn(c); err != nil {
			return err
		}
		select {
		case free <- c.leaves:
		default:
		}
		<-tokens
	}
	return nil
}
