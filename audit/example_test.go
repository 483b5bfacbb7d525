package audit_test

import (
	"context"
	"fmt"

	"github.com/vitalgate/vitalgate/audit"
)

// The life of the log: append entries, sign a checkpoint, prove an entry's inclusion and
// verify the whole log offline with only the one-line verifier key.
func Example() {
	ctx := context.Background()
	signer, _ := audit.NewSigner("vitalgate.example/audit", seededKey(1))
	vkey := signer.Verifier().String() // what auditors keep

	log := &memLog{} // the store
	var tree audit.Tree
	for i := range 5 {
		data := realisticEntry(i).Marshal()
		log.append(data)
		tree.Append(audit.LeafHash(data))
	}
	note, _ := audit.SignCheckpoint(audit.Checkpoint{Origin: "vitalgate.example/audit", Size: tree.Size(), Root: tree.Root()}, signer)

	// An auditor, offline.
	v, _ := audit.ParseVerifierKey(vkey)
	c, err := audit.OpenCheckpoint(note, v)
	fmt.Println("checkpoint:", c.Size, err)

	proof, _ := audit.ProveInclusion(ctx, log, 3, c.Size)
	fmt.Println("entry 3 included:", audit.VerifyInclusion(log.entries[3].hash, 3, c.Size, proof, c.Root) == nil)

	rep, err := audit.Verify(ctx, log, []audit.SignedCheckpoint{{Note: note, Witness: true}}, v, nil)
	fmt.Println("verified:", rep.Entries, rep.Checkpoints, err)
	// Output:
	// checkpoint: 5 <nil>
	// entry 3 included: true
	// verified: 5 1 <nil>
}
