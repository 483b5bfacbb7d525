package audit

import (
	"context"
	"errors"
	"fmt"
	"math/bits"

	"github.com/vitalgate/vitalgate"
)

// LeafSource gives the leaf hashes of a stored log by index range. Stores implement it.
type LeafSource interface {
	// LeafHashes returns the leaf hashes of entries from (inclusive) to to (exclusive), in
	// index order: exactly to-from hashes, or an error.
	LeafHashes(ctx context.Context, from, to uint64) ([][HashSize]byte, error)
}

// ErrInvalidProof is returned (wrapped, with the reason) by VerifyInclusion and
// VerifyConsistency when a proof does not prove what it should.
var ErrInvalidProof = errors.New("audit: invalid proof")

// proofChunk is how many leaf hashes the provers ask a LeafSource for at a time.
const proofChunk = 1 << 14

// subtree is the range of leaves [lo, hi) of one node in a proof.
type subtree struct{ lo, hi uint64 }

// ProveInclusion returns the RFC 6962 audit path (RFC 9162 inclusion proof) for leaf index in
// the tree of the first size leaves, ordered from the leaf towards the root, as
// VerifyInclusion expects.
//
// The proof's nodes are roots of disjoint subtrees that together cover every leaf but index,
// and this version computes each from its leaves: a proof reads size-1 leaf hashes, in chunks,
// and costs about size node hashes (some milliseconds per hundred thousand entries), with memory
// O(log size). The optimisation path: every node used is either a perfect subtree aligned on its
// size (immutable once full) or on the right edge; storing perfect subtree hashes as they
// complete (C2SP tlog-tiles style, or a table keyed by (level, index)) brings a proof down to
// O(log size) reads. The proof format does not change.
//
// Errors: vitalgate.EINVALID if index >= size; otherwise whatever src returns, or
// vitalgate.EINVALID if src holds fewer than size leaves.
func ProveInclusion(ctx context.Context, src LeafSource, index, size uint64) ([][HashSize]byte, error) {
	if index >= size {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "leaf index %d is not below tree size %d", index, size)
	}
	var path []subtree
	inclusionPath(&path, index, 0, size)
	return hashSubtrees(ctx, src, path)
}

// inclusionPath appends the subtrees of RFC 6962 PATH(m, D[lo:hi]).
func inclusionPath(path *[]subtree, m, lo, hi uint64) {
	n := hi - lo
	if n <= 1 {
		return
	}
	k := splitPoint(n)
	if m-lo < k {
		inclusionPath(path, m, lo, lo+k)
		*path = append(*path, subtree{lo + k, hi})
	} else {
		inclusionPath(path, m, lo+k, hi)
		*path = append(*path, subtree{lo, lo + k})
	}
}

// ProveConsistency returns the RFC 6962 consistency proof (RFC 9162 §2.1.4) that the tree of
// the first size1 leaves is a prefix of the tree of the first size2 leaves, as
// VerifyConsistency expects. The proof is empty when size1 is 0 or equals size2.
//
// Cost is as for ProveInclusion: the nodes are disjoint subtrees, computed from at most size2
// leaf hashes.
//
// Errors: vitalgate.EINVALID if size1 > size2; otherwise whatever src returns, or
// vitalgate.EINVALID if src holds fewer than size2 leaves.
func ProveConsistency(ctx context.Context, src LeafSource, size1, size2 uint64) ([][HashSize]byte, error) {
	if size1 > size2 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "first tree size %d is larger than second tree size %d", size1, size2)
	}
	if size1 == 0 || size1 == size2 {
		return [][HashSize]byte{}, nil
	}
	var path []subtree
	consistencyPath(&path, size1, 0, size2, true)
	return hashSubtrees(ctx, src, path)
}

// consistencyPath appends the subtrees of RFC 6962 SUBPROOF(m, D[lo:hi], b).
func consistencyPath(path *[]subtree, m, lo, hi uint64, b bool) {
	if m == hi {
		if !b {
			*path = append(*path, subtree{lo, hi})
		}
		return
	}
	k := splitPoint(hi - lo)
	if m-lo <= k {
		consistencyPath(path, m, lo, lo+k, b)
		*path = append(*path, subtree{lo + k, hi})
	} else {
		consistencyPath(path, m, lo+k, hi, false)
		*path = append(*path, subtree{lo, lo + k})
	}
}

// splitPoint returns the largest power of two smaller than n, for n >= 2.
func splitPoint(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// hashSubtrees returns the root hash of each subtree, reading its leaves from src.
func hashSubtrees(ctx context.Context, src LeafSource, path []subtree) ([][HashSize]byte, error) {
	proof := make([][HashSize]byte, 0, len(path))
	for _, st := range path {
		var t Tree
		for from := st.lo; from < st.hi; {
			to := min(from+proofChunk, st.hi)
			hs, err := src.LeafHashes(ctx, from, to)
			if err != nil {
				return nil, fmt.Errorf("audit: reading leaf hashes [%d, %d): %w", from, to, err)
			}
			if uint64(len(hs)) != to-from {
				return nil, vitalgate.Errorf(vitalgate.EINVALID,
					"the log returned %d leaf hashes for [%d, %d): tree size beyond the log?", len(hs), from, to)
			}
			for _, h := range hs {
				t.Append(h)
			}
			from = to
		}
		proof = append(proof, t.Root())
	}
	return proof, nil
}

// VerifyInclusion checks that proof proves that leafHash is leaf index of the tree of size
// leaves whose root is root, exactly as RFC 9162 §2.1.3.2 specifies. It returns nil on
// success and an error wrapping ErrInvalidProof otherwise.
func VerifyInclusion(leafHash [HashSize]byte, index, size uint64, proof [][HashSize]byte, root [HashSize]byte) error {
	if index >= size {
		return fmt.Errorf("%w: leaf index %d is not below tree size %d", ErrInvalidProof, index, size)
	}
	fn, sn := index, size-1
	r := leafHash
	for _, p := range proof {
		if sn == 0 {
			return fmt.Errorf("%w: inclusion proof has too many nodes (%d)", ErrInvalidProof, len(proof))
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: inclusion proof has too few nodes (%d)", ErrInvalidProof, len(proof))
	}
	if r != root {
		return fmt.Errorf("%w: inclusion proof for leaf %d leads to a different root for tree size %d", ErrInvalidProof, index, size)
	}
	return nil
}

// VerifyConsistency checks that proof proves that the tree of size1 leaves with root root1 is
// a prefix of the tree of size2 leaves with root root2, exactly as RFC 9162 §2.1.4.2
// specifies for 0 < size1 < size2. For size1 == size2 the proof must be empty and the roots
// equal; for size1 == 0 the proof must be empty and root1 the empty tree's root (the empty
// tree is a prefix of every tree). It returns nil on success and an error wrapping
// ErrInvalidProof otherwise.
func VerifyConsistency(size1, size2 uint64, root1, root2 [HashSize]byte, proof [][HashSize]byte) error {
	switch {
	case size1 > size2:
		return fmt.Errorf("%w: first tree size %d is larger than second tree size %d", ErrInvalidProof, size1, size2)
	case size1 == size2:
		if len(proof) != 0 {
			return fmt.Errorf("%w: consistency proof between equal sizes must be empty", ErrInvalidProof)
		}
		if root1 != root2 {
			return fmt.Errorf("%w: two different roots for tree size %d", ErrInvalidProof, size1)
		}
		return nil
	case size1 == 0:
		if len(proof) != 0 {
			return fmt.Errorf("%w: consistency proof from the empty tree must be empty", ErrInvalidProof)
		}
		if root1 != EmptyRoot() {
			return fmt.Errorf("%w: root of the empty tree is wrong", ErrInvalidProof)
		}
		return nil
	}
	// RFC 9162 §2.1.4.2, step by step.
	// 1. An empty consistency_path fails.
	if len(proof) == 0 {
		return fmt.Errorf("%w: empty consistency proof", ErrInvalidProof)
	}
	// 2. If first is an exact power of 2, prepend first_hash.
	path := proof
	if size1&(size1-1) == 0 {
		path = make([][HashSize]byte, 0, len(proof)+1)
		path = append(path, root1)
		path = append(path, proof...)
	}
	// 3. fn = first - 1, sn = second - 1.
	fn, sn := size1-1, size2-1
	// 4. Shift both right while LSB(fn) is set.
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	// 5. fr = sr = first value of the path.
	fr, sr := path[0], path[0]
	// 6. For each subsequent value c.
	for _, c := range path[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: consistency proof has too many nodes (%d)", ErrInvalidProof, len(proof))
		}
		if fn&1 == 1 || fn == sn {
			fr = NodeHash(c, fr)
			sr = NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	// 7. fr must be first_hash, sr second_hash, and sn 0.
	if sn != 0 {
		return fmt.Errorf("%w: consistency proof has too few nodes (%d)", ErrInvalidProof, len(proof))
	}
	if fr != root1 {
		return fmt.Errorf("%w: consistency proof does not lead to the root of tree size %d", ErrInvalidProof, size1)
	}
	if sr != root2 {
		return fmt.Errorf("%w: consistency proof does not lead to the root of tree size %d", ErrInvalidProof, size2)
	}
	return nil
}
