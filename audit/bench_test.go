package audit_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/vitalgate/vitalgate/audit"
)

const benchEntries = 100_000

var benchLog = sync.OnceValues(func() (*memLog, []audit.SignedCheckpoint) {
	log := &memLog{}
	signer, _ := audit.NewSigner(testOrigin, seededKey(1))
	var tree audit.Tree
	var cps []audit.SignedCheckpoint
	for i := range benchEntries {
		data := realisticEntry(i).Marshal()
		log.append(data)
		tree.Append(audit.LeafHash(data))
		if tree.Size()%10_000 == 0 {
			note, _ := audit.SignCheckpoint(audit.Checkpoint{Origin: testOrigin, Size: tree.Size(), Root: tree.Root()}, signer)
			cps = append(cps, audit.SignedCheckpoint{Note: note})
		}
	}
	return log, cps
})

func benchBytes(log *memLog) int64 {
	var n int64
	for _, e := range log.entries {
		n += int64(len(e.data))
	}
	return n
}

// BenchmarkVerify verifies a log of 100 000 entries of about 300 bytes with 10 checkpoints.
// Compare its MB/s with BenchmarkSHA256Baseline, which only hashes the same bytes.
func BenchmarkVerify(b *testing.B) {
	log, cps := benchLog()
	v := audit.Verifier{}
	if s, err := audit.NewSigner(testOrigin, seededKey(1)); err == nil {
		v = s.Verifier()
	}
	b.SetBytes(benchBytes(log))
	b.ResetTimer()
	for b.Loop() {
		rep, err := audit.Verify(context.Background(), log, cps, v, nil)
		if err != nil || rep.Entries != benchEntries {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchBytes(log))/benchEntries, "bytes/entry")
}

// BenchmarkSHA256Baseline hashes the entries of BenchmarkVerify once each with SHA-256: the
// floor under any verification.
func BenchmarkSHA256Baseline(b *testing.B) {
	log, _ := benchLog()
	b.SetBytes(benchBytes(log))
	b.ResetTimer()
	for b.Loop() {
		for _, e := range log.entries {
			_ = sha256.Sum256(e.data)
		}
	}
}

// BenchmarkAppend measures appending one leaf hash to a Tree.
func BenchmarkAppend(b *testing.B) {
	leaf := audit.LeafHash([]byte("x"))
	var tree audit.Tree
	for b.Loop() {
		tree.Append(leaf)
	}
}

// BenchmarkMarshalEntry measures the canonical encoding of a realistic entry.
func BenchmarkMarshalEntry(b *testing.B) {
	e := realisticEntry(7)
	b.SetBytes(int64(len(e.Marshal())))
	for b.Loop() {
		_ = e.Marshal()
	}
}

// BenchmarkProveInclusion measures an inclusion proof in a 100 000-entry log computed from
// leaf hashes (the unoptimised path: about one node hash per leaf).
func BenchmarkProveInclusion(b *testing.B) {
	log, _ := benchLog()
	for b.Loop() {
		if _, err := audit.ProveInclusion(context.Background(), log, 12345, benchEntries); err != nil {
			b.Fatal(err)
		}
	}
}
