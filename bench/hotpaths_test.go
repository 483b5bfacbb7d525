package bench_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/seal"
	"github.com/vitalgate/vitalgate/simulator"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// The hot paths of ingest, one benchmark each, through the public APIs:
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// Together they bound what one POST /fhir/Observation costs besides TLS and HTTP: decode
// and validate, seal, blind indexes, one durable store commit with its audit entry.

// mustRead reads a test file of another package (real sample messages).
func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// simulatedObservation returns an Observation as the simulator sends it.
func simulatedObservation(tb testing.TB) []byte {
	tb.Helper()
	gen, err := simulator.NewGenerator(simulator.KindMonitor, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	docs, err := gen.Observations("bench-device-0001", "bench-patient-0001", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return docs[0]
}

// BenchmarkDecodeValidate decodes and validates one Observation: the FHIR specification's
// heart-rate example (fhir/testdata) and one from the simulator.
func BenchmarkDecodeValidate(b *testing.B) {
	for _, tc := range []struct {
		name string
		doc  []byte
	}{
		{"example-heart-rate", mustRead(b, filepath.Join("..", "fhir", "testdata", "Observation-heart-rate.json"))},
		{"simulator", simulatedObservation(b)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			now := time.Now()
			b.SetBytes(int64(len(tc.doc)))
			for b.Loop() {
				o, err := fhir.DecodeObservation(tc.doc)
				if err != nil {
					b.Fatal(err)
				}
				if err := fhir.ValidateObservation(o, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMarshal re-encodes a decoded Observation with its meta, as ingest stores it.
func BenchmarkMarshal(b *testing.B) {
	o, err := fhir.DecodeObservation(simulatedObservation(b))
	if err != nil {
		b.Fatal(err)
	}
	o.SetMeta("0123456789abcdef0123456789abcdef", "1", time.Now())
	for b.Loop() {
		if _, err := o.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal seals a stored Observation under a patient data key (AES-256-GCM, bound
// to its type, id and version), and opens it again.
func BenchmarkSeal(b *testing.B) {
	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	c, err := seal.NewCipher(dek, "dek-0123456789abcdef")
	if err != nil {
		b.Fatal(err)
	}
	body := simulatedObservation(b)
	aad := seal.AAD("Observation", "0123456789abcdef0123456789abcdef", "1")
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := c.Seal(body, aad, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		sealed, err := c.Seal(body, aad, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := c.Open(sealed, aad); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBlindIndex computes one keyed blind index (HMAC-SHA-256 under a derived key),
// three of which an Observation needs (patient, system|code, code).
func BenchmarkBlindIndex(b *testing.B) {
	kr, err := vault.CreateKeyring(filepath.Join(b.TempDir(), "keys"), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = kr.BlindIndex(seal.DomainCode, "http://loinc.org|8867-4")
	}
}

// mustStore opens a store as the server does (production options) in a temporary dir.
func mustStore(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "vitalgate.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// auditEntry returns an audit entry like the one ingest commits with an Observation.
func auditEntry(i int64) []byte {
	return audit.Entry{Time: time.Now().UTC(), Action: audit.ActionCreate, Type: "rest", Subtype: "create",
		Outcome: audit.OutcomeSuccess, AgentType: audit.AgentDevice, AgentID: fmt.Sprintf("bench-device-%04d", i%64),
		AgentRole: "device", SourceIP: "127.0.0.1", PatientIndex: fmt.Sprintf("%064x", i%64),
		Resources: []string{fmt.Sprintf("Observation/%032x", i)}, RequestID: fmt.Sprintf("%016x", i), Node: "bench"}.Marshal()
}

// BenchmarkCreateResources commits sealed Observations durably (WAL, synchronous=FULL) from
// parallel callers (group commit), one Observation with its audit entry per call (POST
// /fhir/Observation) and 100 per call (a batch Bundle). Compare obs/s.
func BenchmarkCreateResources(b *testing.B) {
	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	c, err := seal.NewCipher(dek, "dek-0123456789abcdef")
	if err != nil {
		b.Fatal(err)
	}
	body := simulatedObservation(b)
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db := mustStore(b)
			var next atomic.Int64
			b.SetParallelism(16) // 16 callers per CPU wait on commits, as devices do
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rs := make([]vitalgate.SealedResource, size)
					now := time.Now().UTC()
					var n int64
					for i := range rs {
						n = next.Add(1)
						id, _ := ingest.NewID(now, rand.Reader)
						sealed, _ := c.Seal(body, seal.AAD("Observation", id, "1"), nil)
						rs[i] = vitalgate.SealedResource{Type: "Observation", ID: id, Version: 1,
							PatientIndex: fmt.Appendf(nil, "patient-%02d", n%64), CodeIndexes: [][]byte{[]byte("8867-4"), []byte("http://loinc.org|8867-4")},
							Effective: now, LastUpdated: now, Body: sealed}
					}
					if err := db.CreateResources(context.Background(), rs, auditEntry(n)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "obs/s")
		})
	}
}

// BenchmarkAuditAppend appends one audit entry per call durably from parallel callers, as
// reads, refusals and authentications do (group commit).
func BenchmarkAuditAppend(b *testing.B) {
	db := mustStore(b)
	var next atomic.Int64
	b.SetParallelism(16)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.AppendAudit(context.Background(), auditEntry(next.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

// verifyStore returns a SQLite store holding an audit log of n entries with a signed
// checkpoint every 10 000 and at the end, and the checkpoints and verifier.
func verifyStore(b *testing.B, n int) (*sqlite.DB, []audit.SignedCheckpoint, audit.Verifier, int64) {
	db := mustStore(b)
	key, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := audit.NewSigner("vitalgate/bench", key)
	if err != nil {
		b.Fatal(err)
	}
	var tree audit.Tree
	var cps []audit.SignedCheckpoint
	var bytes int64
	for i := 0; i < n; i += 1000 {
		batch := make([][]byte, 1000)
		for k := range batch {
			batch[k] = auditEntry(int64(i + k))
			tree.Append(audit.LeafHash(batch[k]))
			bytes += int64(len(batch[k]))
			if tree.Size()%10_000 == 0 {
				note, err := audit.SignCheckpoint(audit.Checkpoint{Origin: "vitalgate/bench", Size: tree.Size(), Root: tree.Root()}, signer)
				if err != nil {
					b.Fatal(err)
				}
				cps = append(cps, audit.SignedCheckpoint{Note: note})
			}
		}
		if _, err := db.AppendAudit(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	return db, cps, signer.Verifier(), bytes
}

// BenchmarkAuditVerifyStore verifies a 50 000-entry log read from the SQLite store (what
// `vitalgate audit verify` does); BenchmarkAuditVerifyStore/sha256 hashes the same bytes,
// already in memory, once each: the floor. Compare MB/s.
func BenchmarkAuditVerifyStore(b *testing.B) {
	const n = 50_000
	db, cps, v, size := verifyStore(b, n)
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			rep, err := audit.Verify(context.Background(), audit.StoreLog{Store: db}, cps, v, nil)
			if err != nil || rep.Entries != n {
				b.Fatal(rep, err)
			}
		}
	})
	b.Run("sha256", func(b *testing.B) {
		var entries [][]byte
		if err := db.AuditEntries(context.Background(), 0, n, func(r vitalgate.AuditRecord) error {
			entries = append(entries, r.Data)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		for b.Loop() {
			for _, e := range entries {
				_ = sha256.Sum256(e)
			}
		}
	})
}
