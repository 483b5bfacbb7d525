package postgres_test

import (
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/postgres"
	"github.com/vitalgate/vitalgate/storetest"
)

// openBench returns a new, empty store for a benchmark.
func openBench(b *testing.B) vitalgate.Store { return MustOpen(b, "", postgres.Options{MaxConns: 16}) }

// BenchmarkCreateResources is storetest.BenchmarkCreateResources on this store.
func BenchmarkCreateResources(b *testing.B) { storetest.BenchmarkCreateResources(b, openBench) }

// BenchmarkAppendAudit is storetest.BenchmarkAppendAudit on this store.
func BenchmarkAppendAudit(b *testing.B) { storetest.BenchmarkAppendAudit(b, openBench) }
