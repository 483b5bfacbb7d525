package audit

import (
	"crypto/sha256"
	"fmt"
	"math/bits"
)

// HashSize is the size of every hash in the log: SHA-256.
const HashSize = sha256.Size

// EmptyRoot returns the root hash of the empty tree, SHA-256 of the empty string
// (RFC 6962 §2.1).
func EmptyRoot() [HashSize]byte { return sha256.Sum256(nil) }

// LeafHash returns the RFC 6962 leaf hash of data: SHA-256(0x00 || data).
func LeafHash(data []byte) [HashSize]byte {
	if len(data) < 1024 { // the common case: an audit entry; hash without allocating
		var buf [1024]byte
		n := copy(buf[1:], data)
		return sha256.Sum256(buf[:1+n])
	}
	h := sha256.New()
	h.Write([]byte{0x00})
	h.Write(data)
	var out [HashSize]byte
	h.Sum(out[:0])
	return out
}

// NodeHash returns the RFC 6962 interior node hash of two children: SHA-256(0x01 || l || r).
func NodeHash(l, r [HashSize]byte) [HashSize]byte {
	var buf [1 + 2*HashSize]byte
	buf[0] = 0x01
	copy(buf[1:], l[:])
	copy(buf[1+HashSize:], r[:])
	return sha256.Sum256(buf[:])
}

// Tree is an append-only Merkle tree that keeps only the roots of its maximal perfect subtrees
// (a "compact range"): one hash per set bit of its size, so at most 64 hashes whatever the
// number of leaves. Appending costs one leaf's worth of node hashes amortised (at most
// log2(size)), and Root costs one node hash per set bit of the size. It lets a verifier stream
// a log of any length and compute the tree head at every size it passes.
//
// The zero Tree is the empty tree, ready to use. A Tree is not safe for concurrent use.
type Tree struct {
	size  uint64
	stack [][HashSize]byte // roots of the perfect subtrees, largest (leftmost) first
}

// Size returns the number of leaves appended so far.
func (t *Tree) Size() uint64 { return t.size }

// Append adds a leaf, given by its leaf hash (LeafHash of the entry bytes).
func (t *Tree) Append(leafHash [HashSize]byte) {
	h := leafHash
	// Each trailing one bit of the old size is a perfect subtree of the same height as the
	// one being carried: merge them, like binary addition.
	for s := t.size; s&1 == 1; s >>= 1 {
		n := len(t.stack) - 1
		h = NodeHash(t.stack[n], h)
		t.stack = t.stack[:n]
	}
	t.stack = append(t.stack, h)
	t.size++
}

// Root returns the RFC 6962 Merkle Tree Hash of the leaves appended so far (EmptyRoot for none).
func (t *Tree) Root() [HashSize]byte {
	n := len(t.stack)
	if n == 0 {
		return EmptyRoot()
	}
	r := t.stack[n-1]
	for i := n - 2; i >= 0; i-- {
		r = NodeHash(t.stack[i], r)
	}
	return r
}

// Clone returns an independent copy of t.
func (t *Tree) Clone() *Tree {
	c := &Tree{size: t.size, stack: make([][HashSize]byte, len(t.stack), bits.Len64(t.size)+1)}
	copy(c.stack, t.stack)
	return c
}

// SubtreeRoots returns a copy of the tree's state: the roots of its maximal perfect subtrees,
// largest (leftmost) first, one per set bit of Size. With Size it is enough to resume
// appending (NewTree), so an appender can persist it beside a checkpoint instead of
// re-reading every leaf at start-up.
func (t *Tree) SubtreeRoots() [][HashSize]byte {
	return append([][HashSize]byte(nil), t.stack...)
}

// NewTree returns a tree of size leaves from its SubtreeRoots. It fails if the number of
// roots does not match size (one per set bit).
func NewTree(size uint64, subtreeRoots [][HashSize]byte) (*Tree, error) {
	if len(subtreeRoots) != bits.OnesCount64(size) {
		return nil, fmt.Errorf("audit: a tree of size %d has %d subtree roots, not %d",
			size, bits.OnesCount64(size), len(subtreeRoots))
	}
	t := &Tree{size: size, stack: make([][HashSize]byte, len(subtreeRoots), bits.Len64(size)+1)}
	copy(t.stack, subtreeRoots)
	return t, nil
}
