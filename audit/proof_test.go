package audit_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

const maxExhaustive = 64

func TestInclusionExhaustive(t *testing.T) {
	ctx := context.Background()
	leaves := testLeaves(maxExhaustive + 1)
	for size := 1; size <= maxExhaustive; size++ {
		root := naiveMTH(leaves[:size])
		for index := 0; index < size; index++ {
			proof, err := audit.ProveInclusion(ctx, leafSlice(leaves), uint64(index), uint64(size))
			if err != nil {
				t.Fatalf("ProveInclusion(%d, %d): %v", index, size, err)
			}
			if want := naivePath(index, leaves[:size]); !slices.Equal(proof, want) {
				t.Fatalf("ProveInclusion(%d, %d) differs from RFC 6962 PATH", index, size)
			}
			if err := audit.VerifyInclusion(leaves[index], uint64(index), uint64(size), proof, root); err != nil {
				t.Fatalf("VerifyInclusion(%d, %d): %v", index, size, err)
			}
			checkInclusionTampering(t, leaves, index, size, proof, root)
		}
	}
}

// checkInclusionTampering checks that every single change to a valid inclusion proof fails.
func checkInclusionTampering(t *testing.T, leaves []hash, index, size int, proof []hash, root hash) {
	t.Helper()
	fail := func(what string, leaf hash, i, n uint64, p []hash, r hash) {
		t.Helper()
		err := audit.VerifyInclusion(leaf, i, n, p, r)
		if !errors.Is(err, audit.ErrInvalidProof) {
			t.Fatalf("(%d, %d) %s: err = %v, want ErrInvalidProof", index, size, what, err)
		}
	}
	i, n := uint64(index), uint64(size)
	other := leaves[(index+1)%len(leaves)]
	fail("wrong leaf", other, i, n, proof, root)
	fail("wrong root", leaves[index], i, n, proof, other)
	fail("index = size", leaves[index], n, n, proof, root)
	if index > 0 {
		fail("index-1", leaves[index], i-1, n, proof, root)
	}
	if index+1 < size {
		fail("index+1", leaves[index], i+1, n, proof, root)
	}
	// Another size, with that size's real root: the path must not lead there.
	fail("size+1", leaves[index], i, n+1, proof, naiveMTH(leaves[:size+1]))
	if index < size-1 {
		fail("size-1", leaves[index], i, n-1, proof, naiveMTH(leaves[:size-1]))
	}
	fail("extra node", leaves[index], i, n, append(slices.Clone(proof), other), root)
	if len(proof) > 0 {
		fail("missing last node", leaves[index], i, n, proof[:len(proof)-1], root)
		fail("missing first node", leaves[index], i, n, proof[1:], root)
	}
	for k := range proof {
		p := slices.Clone(proof)
		p[k][k%32] ^= 1
		fail("flipped bit", leaves[index], i, n, p, root)
	}
	if len(proof) >= 2 {
		p := slices.Clone(proof)
		p[0], p[1] = p[1], p[0]
		fail("swapped nodes", leaves[index], i, n, p, root)
	}
}

func TestConsistencyExhaustive(t *testing.T) {
	ctx := context.Background()
	leaves := testLeaves(maxExhaustive + 1)
	for size2 := 0; size2 <= maxExhaustive; size2++ {
		root2 := naiveMTH(leaves[:size2])
		for size1 := 0; size1 <= size2; size1++ {
			root1 := naiveMTH(leaves[:size1])
			proof, err := audit.ProveConsistency(ctx, leafSlice(leaves), uint64(size1), uint64(size2))
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d): %v", size1, size2, err)
			}
			var want []hash
			if size1 > 0 {
				want = naiveSubproof(size1, leaves[:size2], true)
			}
			if !slices.Equal(proof, want) {
				t.Fatalf("ProveConsistency(%d, %d) differs from RFC 6962 PROOF", size1, size2)
			}
			if err := audit.VerifyConsistency(uint64(size1), uint64(size2), root1, root2, proof); err != nil {
				t.Fatalf("VerifyConsistency(%d, %d): %v", size1, size2, err)
			}
			checkConsistencyTampering(t, leaves, size1, size2, proof, root1, root2)
		}
	}
}

func checkConsistencyTampering(t *testing.T, leaves []hash, size1, size2 int, proof []hash, root1, root2 hash) {
	t.Helper()
	fail := func(what string, n1, n2 uint64, r1, r2 hash, p []hash) {
		t.Helper()
		err := audit.VerifyConsistency(n1, n2, r1, r2, p)
		if !errors.Is(err, audit.ErrInvalidProof) {
			t.Fatalf("(%d, %d) %s: err = %v, want ErrInvalidProof", size1, size2, what, err)
		}
	}
	n1, n2 := uint64(size1), uint64(size2)
	other := audit.LeafHash([]byte("other"))
	fail("wrong root1", n1, n2, other, root2, proof)
	fail("extra node", n1, n2, root1, root2, append(slices.Clone(proof), other))
	if size1 == 0 {
		return // the empty tree is a prefix of every tree: nothing else to tamper with
	}
	fail("wrong root2", n1, n2, root1, other, proof)
	// Other sizes, with their real roots: the proof must not lead there.
	fail("size2+1", n1, n2+1, root1, naiveMTH(leaves[:size2+1]), proof)
	if size1 < size2 {
		fail("sizes swapped", n2, n1, root2, root1, proof)
		fail("size1+1", n1+1, n2, naiveMTH(leaves[:size1+1]), root2, proof)
		if size1 > 1 {
			fail("size1-1", n1-1, n2, naiveMTH(leaves[:size1-1]), root2, proof)
		}
		if size1 < size2-1 {
			fail("size2-1", n1, n2-1, root1, naiveMTH(leaves[:size2-1]), proof)
		}
	}
	if len(proof) > 0 {
		fail("missing last node", n1, n2, root1, root2, proof[:len(proof)-1])
		fail("missing first node", n1, n2, root1, root2, proof[1:])
	}
	for k := range proof {
		p := slices.Clone(proof)
		p[k][k%32] ^= 0x80
		fail("flipped bit", n1, n2, root1, root2, p)
	}
	if len(proof) >= 2 {
		p := slices.Clone(proof)
		p[0], p[1] = p[1], p[0]
		fail("swapped nodes", n1, n2, root1, root2, p)
	}
}

func TestProveErrors(t *testing.T) {
	ctx := context.Background()
	leaves := leafSlice(testLeaves(10))
	tests := []struct {
		name  string
		prove func() error
		code  string
	}{
		{"inclusion index = size", func() error { _, err := audit.ProveInclusion(ctx, leaves, 5, 5); return err }, vitalgate.EINVALID},
		{"inclusion empty tree", func() error { _, err := audit.ProveInclusion(ctx, leaves, 0, 0); return err }, vitalgate.EINVALID},
		{"inclusion beyond log", func() error { _, err := audit.ProveInclusion(ctx, leaves, 3, 11); return err }, vitalgate.EINTERNAL},
		{"consistency size1 > size2", func() error { _, err := audit.ProveConsistency(ctx, leaves, 6, 5); return err }, vitalgate.EINVALID},
		{"consistency beyond log", func() error { _, err := audit.ProveConsistency(ctx, leaves, 3, 12); return err }, vitalgate.EINTERNAL},
		{"short source", func() error { _, err := audit.ProveInclusion(ctx, shortSource{leaves}, 3, 10); return err }, vitalgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.prove()
			if err == nil {
				t.Fatal("no error")
			}
			if got := vitalgate.ErrorCode(err); got != tt.code {
				t.Errorf("code = %q, want %q (%v)", got, tt.code, err)
			}
		})
	}
}

// shortSource returns one leaf fewer than asked.
type shortSource struct{ leafSlice }

func (s shortSource) LeafHashes(ctx context.Context, from, to uint64) ([]hash, error) {
	hs, err := s.leafSlice.LeafHashes(ctx, from, to)
	if len(hs) > 0 {
		hs = hs[1:]
	}
	return hs, err
}

func TestVerifyConsistencyEdgeCases(t *testing.T) {
	leaves := testLeaves(4)
	r4 := naiveMTH(leaves)
	tests := []struct {
		name         string
		size1, size2 uint64
		root1, root2 hash
		proof        []hash
		ok           bool
	}{
		{"empty to empty", 0, 0, audit.EmptyRoot(), audit.EmptyRoot(), nil, true},
		{"empty to 4", 0, 4, audit.EmptyRoot(), r4, nil, true},
		{"empty with wrong root", 0, 4, r4, r4, nil, false},
		{"empty with a proof", 0, 4, audit.EmptyRoot(), r4, []hash{r4}, false},
		{"same size", 4, 4, r4, r4, nil, true},
		{"same size, other root", 4, 4, r4, leaves[0], nil, false},
		{"same size with a proof", 4, 4, r4, r4, []hash{r4}, false},
		{"shrinking", 4, 3, r4, r4, nil, false},
		{"no proof", 3, 4, naiveMTH(leaves[:3]), r4, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := audit.VerifyConsistency(tt.size1, tt.size2, tt.root1, tt.root2, tt.proof)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestCertificateTransparencyProofs checks real proofs served by a production RFC 6962 log.
func TestCertificateTransparencyProofs(t *testing.T) {
	var sth struct {
		Size uint64 `json:"tree_size"`
		Root []byte `json:"sha256_root_hash"`
	}
	var entries struct {
		Entries []struct {
			Data []byte `json:"leaf_input"`
		}
	}
	var incl struct {
		Index uint64   `json:"leaf_index"`
		Path  [][]byte `json:"audit_path"`
	}
	var cons struct {
		Path [][]byte `json:"consistency"`
	}
	for file, v := range map[string]any{"sth": &sth, "entries": &entries, "proof": &incl, "consistency": &cons} {
		data, err := os.ReadFile("testdata/argon2020/" + file + ".json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatal(err)
		}
	}
	toHashes := func(bs [][]byte) []hash {
		out := make([]hash, len(bs))
		for i, b := range bs {
			out[i] = hash(b)
		}
		return out
	}
	root := hash(sth.Root)
	leaf := audit.LeafHash(entries.Entries[0].Data)
	oldRoot, _ := base64.StdEncoding.DecodeString("AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ=")
	tests := []struct {
		name   string
		verify func() error
		ok     bool
	}{
		{"inclusion", func() error { return audit.VerifyInclusion(leaf, incl.Index, sth.Size, toHashes(incl.Path), root) }, true},
		{"inclusion wrong index", func() error { return audit.VerifyInclusion(leaf, incl.Index+1, sth.Size, toHashes(incl.Path), root) }, false},
		{"consistency", func() error {
			return audit.VerifyConsistency(3654490, sth.Size, hash(oldRoot), root, toHashes(cons.Path))
		}, true},
		{"consistency wrong size", func() error {
			return audit.VerifyConsistency(3654491, sth.Size, hash(oldRoot), root, toHashes(cons.Path))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.verify(); (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// FuzzVerifyInclusion checks that a valid proof verifies and that any change to the leaf,
// index, size or a proof node makes it fail.
func FuzzVerifyInclusion(f *testing.F) {
	f.Add(uint16(5), uint16(13), uint16(0), byte(1), uint8(0))
	f.Add(uint16(0), uint16(1), uint16(0), byte(0), uint8(1))
	f.Add(uint16(200), uint16(1000), uint16(3), byte(0x80), uint8(2))
	leaves := testLeaves(1024)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, index, size, k uint16, flip byte, mode uint8) {
		n := uint64(size)%uint64(len(leaves)-64) + 1 // room for a larger tree
		i := uint64(index) % n
		proof, err := audit.ProveInclusion(ctx, leafSlice(leaves), i, n)
		if err != nil {
			t.Fatal(err)
		}
		var tree audit.Tree
		for _, l := range leaves[:n] {
			tree.Append(l)
		}
		root := tree.Root()
		if err := audit.VerifyInclusion(leaves[i], i, n, proof, root); err != nil {
			t.Fatalf("valid proof (%d, %d): %v", i, n, err)
		}
		leaf, ti, tn := leaves[i], i, n
		switch mode % 4 {
		case 0: // flip bits in a proof node
			if len(proof) == 0 || flip == 0 {
				return
			}
			proof[int(k)%len(proof)][int(k)%32] ^= flip
		case 1: // another index
			ti = (i + 1 + uint64(k)) % (n + 1)
			if ti == i {
				return
			}
		case 2: // another size, with its real root
			tn = n + 1 + uint64(k)%63
			root = naiveMTH(leaves[:tn])
		case 3: // flip bits in the leaf
			if flip == 0 {
				return
			}
			leaf[int(k)%32] ^= flip
		}
		if err := audit.VerifyInclusion(leaf, ti, tn, proof, root); err == nil {
			t.Fatalf("tampered proof (mode %d) for (%d, %d) verified", mode%4, i, n)
		}
	})
}

// FuzzVerifyConsistency checks that a valid consistency proof verifies and that any change to
// a size, a root or a proof node makes it fail.
func FuzzVerifyConsistency(f *testing.F) {
	f.Add(uint16(5), uint16(13), uint16(0), byte(1), uint8(0))
	f.Add(uint16(8), uint16(16), uint16(1), byte(2), uint8(1))
	f.Add(uint16(300), uint16(1000), uint16(3), byte(0x80), uint8(2))
	leaves := testLeaves(1024)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, a, b, k uint16, flip byte, mode uint8) {
		n2 := uint64(b) % uint64(len(leaves)-63)
		n1 := uint64(a) % (n2 + 1)
		proof, err := audit.ProveConsistency(ctx, leafSlice(leaves), n1, n2)
		if err != nil {
			t.Fatal(err)
		}
		r1, r2 := naiveMTH(leaves[:n1]), naiveMTH(leaves[:n2])
		if err := audit.VerifyConsistency(n1, n2, r1, r2, proof); err != nil {
			t.Fatalf("valid proof (%d, %d): %v", n1, n2, err)
		}
		t1, t2 := n1, n2
		switch mode % 4 {
		case 0:
			if len(proof) == 0 || flip == 0 {
				return
			}
			proof[int(k)%len(proof)][int(k)%32] ^= flip
		case 1:
			if n1 == n2 || n1 == 0 {
				return // every size1 is consistent with itself and 0 with anything
			}
			t1 = (n1 + 1 + uint64(k)) % (n2 + 1)
			if t1 == n1 || t1 == 0 {
				return
			}
			r1 = naiveMTH(leaves[:t1])
		case 2:
			if n1 == 0 {
				return
			}
			t2 = n2 + 1 + uint64(k)%63
			r2 = naiveMTH(leaves[:t2])
		case 3:
			if flip == 0 {
				return
			}
			r1[int(k)%32] ^= flip
		}
		if err := audit.VerifyConsistency(t1, t2, r1, r2, proof); err == nil {
			t.Fatalf("tampered proof (mode %d) for (%d, %d) verified", mode%4, n1, n2)
		}
	})
}
