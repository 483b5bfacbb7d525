package sqlite_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/sqlite"
)

// BenchmarkCreateResources stores resources with 1 KiB bodies, one caller at a time (serial)
// and from many goroutines (parallel, where group commit shares transactions), in batches of
// 1 and 100 resources. resources/s is the figure to compare.
func BenchmarkCreateResources(b *testing.B) {
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte(i)
	}
	for _, mode := range []string{"serial", "parallel"} {
		for _, size := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode, size), func(b *testing.B) {
				db := MustOpen(b, "", sqlite.Options{})
				var next atomic.Int64
				batch := func() []vitalgate.SealedResource {
					rs := make([]vitalgate.SealedResource, size)
					for i := range rs {
						n := next.Add(1)
						rs[i] = vitalgate.SealedResource{
							Type: "Observation", ID: fmt.Sprintf("obs-%09d", n), Version: 1,
							PatientIndex: fmt.Appendf(nil, "patient-%04d", n%1000),
							CodeIndexes:  [][]byte{[]byte("8867-4"), []byte("147842")},
							Effective:    time.Unix(n, 0),
							LastUpdated:  time.Unix(n, 0),
							Body:         body,
						}
					}
					return rs
				}
				ctx := b.Context()
				b.SetBytes(int64(size * len(body)))
				b.ResetTimer()
				start := time.Now()
				if mode == "serial" {
					for b.Loop() {
						if err := db.CreateResources(ctx, batch()); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := db.CreateResources(ctx, batch()); err != nil {
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
