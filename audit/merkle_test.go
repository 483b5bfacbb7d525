package audit_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/vitalgate/vitalgate/audit"
)

// The RFC 6962 reference vectors of the Certificate Transparency test suite
// (certificate-transparency merkle_tree_test, also transparency-dev/merkle testonly): the
// roots of the trees of the first n of eight fixed leaves.
var ctLeaves = []string{"", "00", "10", "2021", "3031", "40414243",
	"5051525354555657", "606162636465666768696a6b6c6d6e6f"}

var ctRoots = []string{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func TestTreeReferenceVectors(t *testing.T) {
	var tree audit.Tree
	if got, want := hex.EncodeToString(func() []byte { r := tree.Root(); return r[:] }()),
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Fatalf("empty root = %s, want %s", got, want)
	}
	for i, leaf := range ctLeaves {
		data, _ := hex.DecodeString(leaf)
		tree.Append(audit.LeafHash(data))
		t.Run(ctRoots[i][:8], func(t *testing.T) {
			root := tree.Root()
			if got := hex.EncodeToString(root[:]); got != ctRoots[i] {
				t.Errorf("root of %d leaves = %s, want %s", i+1, got, ctRoots[i])
			}
			if tree.Size() != uint64(i+1) {
				t.Errorf("Size = %d, want %d", tree.Size(), i+1)
			}
		})
	}
}

func TestTreeMatchesNaive(t *testing.T) {
	leaves := testLeaves(300)
	var tree audit.Tree
	for n := 0; n <= len(leaves); n++ {
		if got, want := tree.Root(), naiveMTH(leaves[:n]); got != want {
			t.Fatalf("root of %d leaves = %x, want %x", n, got, want)
		}
		if n < len(leaves) {
			tree.Append(leaves[n])
		}
	}
}

func TestTreeClone(t *testing.T) {
	leaves := testLeaves(10)
	var tree audit.Tree
	for _, l := range leaves[:7] {
		tree.Append(l)
	}
	c := tree.Clone()
	for _, l := range leaves[7:] {
		c.Append(l)
	}
	if got, want := tree.Root(), naiveMTH(leaves[:7]); got != want {
		t.Errorf("original changed by appending to clone")
	}
	if got, want := c.Root(), naiveMTH(leaves); got != want {
		t.Errorf("clone root wrong")
	}
}

func TestHashes(t *testing.T) {
	tests := []struct {
		name string
		got  [audit.HashSize]byte
		want string
	}{
		{"leaf of empty", audit.LeafHash(nil), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"},
		{"empty root", audit.EmptyRoot(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"node", audit.NodeHash(audit.LeafHash(nil), audit.LeafHash([]byte{0})), ctRoots[1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, _ := hex.DecodeString(tt.want)
			if !bytes.Equal(tt.got[:], want) {
				t.Errorf("got %x, want %s", tt.got, tt.want)
			}
		})
	}
}

func TestTreeResume(t *testing.T) {
	leaves := testLeaves(40)
	for _, size := range []int{0, 1, 2, 3, 7, 8, 21, 32, 33} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var tree audit.Tree
			for _, l := range leaves[:size] {
				tree.Append(l)
			}
			resumed, err := audit.NewTree(uint64(size), tree.SubtreeRoots())
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range leaves[size:] {
				resumed.Append(l)
			}
			if resumed.Root() != naiveMTH(leaves) || resumed.Size() != uint64(len(leaves)) {
				t.Errorf("resumed tree has the wrong root or size")
			}
			if _, err := audit.NewTree(uint64(size)+1, tree.SubtreeRoots()); size%2 == 0 && err == nil {
				t.Errorf("NewTree accepted the wrong number of roots")
			}
		})
	}
}
