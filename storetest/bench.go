package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// auditEntrySize is about the size of a canonical audit entry (package audit's JSON).
const auditEntrySize = 400

// auditEntry returns an audit entry of auditEntrySize bytes that names n.
func auditEntry(n int64) []byte {
	e := make([]byte, auditEntrySize)
	for i := range e {
		e[i] = 'a' + byte(i%26)
	}
	copy(e, fmt.Appendf(nil, `{"n":%d}`, n))
	return e
}

// BenchmarkCreateResources stores resources with 1 KiB bodies, one caller at a time (serial)
// and from many goroutines (parallel, where group commit shares transactions), in batches of
// 1 and 100 resources, without and with one audit entry per call (as ingest writes them), in
// stores returned by open (a new, empty one each time). resources/s is the figure to compare.
// Where transactions that append audit entries are serialized (PostgreSQL's audit_head row
// lock), the parallel figures with audit=1 depend on the group commit.
func BenchmarkCreateResources(b *testing.B, open func(b *testing.B) vitalgate.Store) {
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte(i)
	}
	for _, mode := range []string{"serial", "parallel"} {
		for _, size := range []int{1, 100} {
			for _, audit := range []int{0, 1} {
				b.Run(fmt.Sprintf("%s/batch=%d/audit=%d", mode, size, audit), func(b *testing.B) {
					db := open(b)
					var next atomic.Int64
					batch := func() ([]vitalgate.SealedResource, [][]byte) {
						rs := make([]vitalgate.SealedResource, size)
						var n int64
						for i := range rs {
							n = next.Add(1)
							rs[i] = vitalgate.SealedResource{
								Type: "Observation", ID: fmt.Sprintf("obs-%09d", n), Version: 1,
								PatientIndex: fmt.Appendf(nil, "patient-%04d", n%1000),
								CodeIndexes:  [][]byte{[]byte("8867-4"), []byte("147842")},
								Effective:    time.Unix(n, 0),
								LastUpdated:  time.Unix(n, 0),
								Body:         body,
							}
						}
						var es [][]byte
						for range audit {
							es = append(es, auditEntry(n))
						}
						return rs, es
					}
					ctx := b.Context()
					b.SetBytes(int64(size * len(body)))
					b.ResetTimer()
					start := time.Now()
					if mode == "serial" {
						for b.Loop() {
							rs, es := batch()
							if err := db.CreateResources(ctx, rs, es...); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						b.SetParallelism(8)
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								rs, es := batch()
								if err := db.CreateResources(ctx, rs, es...); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					b.ReportMetric(float64(next.Load())/time.Since(start).Seconds(), "resources/s")
				})
			}
		}
	}
}

// BenchmarkAppendAudit appends audit entries of auditEntrySize bytes, one caller at a time
// (serial: one commit and fsync per call) and from many goroutines (parallel: the appends
// share group commits with each other, as they would with CreateResources), one and ten
// entries per call. entries/s is the figure to compare: the server appends one entry for
// every read of patient data. open returns a new, empty store.
func BenchmarkAppendAudit(b *testing.B, open func(b *testing.B) vitalgate.Store) {
	for _, mode := range []string{"serial", "parallel"} {
		for _, per := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/entries=%d", mode, per), func(b *testing.B) {
				db := open(b)
				var next atomic.Int64
				entries := func() [][]byte {
					es := make([][]byte, per)
					for i := range es {
						es[i] = auditEntry(next.Add(1))
					}
					return es
				}
				ctx := b.Context()
				b.SetBytes(int64(per * auditEntrySize))
				b.ResetTimer()
				start := time.Now()
				if mode == "serial" {
					for b.Loop() {
						if _, err := db.AppendAudit(ctx, entries()...); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := db.AppendAudit(ctx, entries()...); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				elapsed := time.Since(start)
				b.ReportMetric(float64(next.Load())/elapsed.Seconds(), "entries/s")
				b.StopTimer()
				if n, err := db.AuditSize(ctx); err != nil || n != uint64(next.Load()) { // #nosec G115 -- a count of appends, never negative
					b.Fatalf("AuditSize = %d, %v; appended %d", n, err, next.Load())
				}
			})
		}
	}
}
