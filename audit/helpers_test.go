package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/audit"
)

type hash = [audit.HashSize]byte

// naiveMTH is RFC 6962 §2.1 MTH, written recursively and independently of audit.Tree.
func naiveMTH(leaves []hash) hash {
	switch n := len(leaves); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	default:
		k := naiveSplit(n)
		l, r := naiveMTH(leaves[:k]), naiveMTH(leaves[k:])
		return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
	}
}

func naiveSplit(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// naivePath is RFC 6962 §2.1.1 PATH(m, D[n]).
func naivePath(m int, leaves []hash) []hash {
	n := len(leaves)
	if n <= 1 {
		return nil
	}
	k := naiveSplit(n)
	if m < k {
		return append(naivePath(m, leaves[:k]), naiveMTH(leaves[k:]))
	}
	return append(naivePath(m-k, leaves[k:]), naiveMTH(leaves[:k]))
}

// naiveSubproof is RFC 6962 §2.1.2 SUBPROOF(m, D[n], b).
func naiveSubproof(m int, leaves []hash, b bool) []hash {
	n := len(leaves)
	if m == n {
		if b {
			return nil
		}
		return []hash{naiveMTH(leaves)}
	}
	k := naiveSplit(n)
	if m <= k {
		return append(naiveSubproof(m, leaves[:k], b), naiveMTH(leaves[k:]))
	}
	return append(naiveSubproof(m-k, leaves[k:], false), naiveMTH(leaves[:k]))
}

// testLeaves returns n distinct leaf hashes.
func testLeaves(n int) []hash {
	out := make([]hash, n)
	for i := range out {
		out[i] = audit.LeafHash(fmt.Appendf(nil, "leaf %d", i))
	}
	return out
}

// memEntry is one stored entry of memLog.
type memEntry struct {
	index uint64
	data  []byte
	hash  hash
}

// memLog is an in-memory store: a LeafSource and an EntrySource. Entries carry explicit
// indices, as a database primary key would, so tests can leave gaps or renumber.
type memLog struct {
	entries []memEntry
	size    *uint64 // overrides len(entries) as the reported size
	failAt  *uint64 // Entries fails with errIO when it reaches this index
}

var errIO = errors.New("disk on fire")

func (m *memLog) append(data []byte) {
	m.entries = append(m.entries, memEntry{uint64(len(m.entries)), data, audit.LeafHash(data)})
}

// renumber sets every entry's index to its position.
func (m *memLog) renumber() {
	for i := range m.entries {
		m.entries[i].index = uint64(i)
	}
}

func (m *memLog) clone() *memLog {
	c := &memLog{entries: make([]memEntry, len(m.entries))}
	for i, e := range m.entries {
		e.data = append([]byte(nil), e.data...)
		c.entries[i] = e
	}
	return c
}

func (m *memLog) Size(context.Context) (uint64, error) {
	if m.size != nil {
		return *m.size, nil
	}
	return uint64(len(m.entries)), nil
}

func (m *memLog) Entries(ctx context.Context, from uint64, fn func(uint64, []byte, hash) error) error {
	for _, e := range m.entries {
		if e.index < from {
			continue
		}
		if m.failAt != nil && e.index == *m.failAt {
			return errIO
		}
		if err := fn(e.index, e.data, e.hash); err != nil {
			return err
		}
	}
	return nil
}

func (m *memLog) LeafHashes(_ context.Context, from, to uint64) ([]hash, error) {
	if to > uint64(len(m.entries)) || from > to {
		return nil, fmt.Errorf("range [%d, %d) beyond %d entries", from, to, len(m.entries))
	}
	out := make([]hash, 0, to-from)
	for _, e := range m.entries[from:to] {
		out = append(out, e.hash)
	}
	return out, nil
}

// leafSlice is a LeafSource over a slice of leaf hashes.
type leafSlice []hash

func (s leafSlice) LeafHashes(_ context.Context, from, to uint64) ([]hash, error) {
	if to > uint64(len(s)) || from > to {
		return nil, fmt.Errorf("range [%d, %d) beyond %d leaves", from, to, len(s))
	}
	return s[from:to], nil
}

// seededKey returns a deterministic Ed25519 key for tests.
func seededKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s)
}

// MustSigner returns a signer for name with a deterministic key.
func MustSigner(tb testing.TB, name string, seed byte) *audit.Signer {
	tb.Helper()
	s, err := audit.NewSigner(name, seededKey(seed))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// MustSign signs a checkpoint or fails the test.
func MustSign(tb testing.TB, c audit.Checkpoint, s *audit.Signer) []byte {
	tb.Helper()
	note, err := audit.SignCheckpoint(c, s)
	if err != nil {
		tb.Fatal(err)
	}
	return note
}

// realisticEntry returns typical entries, about 300 bytes on average: for odd i a device's
// authentication (about 220 bytes), for even i a clinician's search (about 410 bytes, most of
// it the 64-hex patient blind index and a UUID resource id).
func realisticEntry(i int) audit.Entry {
	if i%2 == 1 {
		return audit.Entry{
			Time:      time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC).Add(time.Duration(i) * time.Millisecond),
			Action:    audit.ActionExecute,
			Type:      "authn",
			Subtype:   "login",
			Outcome:   audit.OutcomeSuccess,
			AgentType: audit.AgentDevice,
			AgentID:   fmt.Sprintf("pump-%05d", i%5000),
			AgentRole: "device",
			SourceIP:  fmt.Sprintf("10.1.%d.%d", i%200, i%250),
			RequestID: fmt.Sprintf("req-%016x", uint64(i)*0x9e3779b97f4a7c15),
			Node:      "vitalgate-1",
		}
	}
	return audit.Entry{
		Time:         time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC).Add(time.Duration(i) * time.Millisecond),
		Action:       audit.ActionExecute,
		Type:         "rest",
		Subtype:      "search",
		Outcome:      audit.OutcomeSuccess,
		AgentType:    audit.AgentClient,
		AgentID:      "ehr-cardiology-01",
		AgentRole:    "clinician",
		SourceIP:     "10.20.30.40",
		PatientIndex: fmt.Sprintf("%064x", sha256.Sum256(fmt.Appendf(nil, "patient %d", i%1000))),
		Resources:    []string{fmt.Sprintf("Observation/%08d-7c1e-4b8e-9d3a-5f2b1c0e6a%02d", i, i%100)},
		Count:        1 + i%20,
		RequestID:    fmt.Sprintf("req-%016x", uint64(i)*0x9e3779b97f4a7c15),
		Node:         "vitalgate-1",
	}
}

// rangeLog is memLog as a RangeSource: Verify reads it in chunks, in parallel.
type rangeLog struct{ *memLog }

func (r rangeLog) EntryRange(ctx context.Context, from, to uint64, fn func(uint64, []byte, hash) error) error {
	for _, e := range r.entries {
		if e.index < from || e.index >= to {
			continue
		}
		if r.failAt != nil && e.index == *r.failAt {
			return errIO
		}
		if err := fn(e.index, e.data, e.hash); err != nil {
			return err
		}
	}
	return nil
}

// sources are the ways the verification tests read a log: sequentially, and in parallel
// chunks of several sizes (chunk boundaries inside, at and between checkpoints).
var sources = []struct {
	name  string
	chunk uint64 // 0: sequential (an EntrySource only)
}{{"sequential", 0}, {"chunks of 4", 4}, {"chunks of 8", 8}, {"chunks of 64", 64}, {"chunks of 4096", 4096}}

// source returns the log as Verify reads it in mode chunk, setting the chunk size until the
// test ends.
func source(t *testing.T, log *memLog, chunk uint64) audit.EntrySource {
	if chunk == 0 {
		return log
	}
	t.Cleanup(audit.SetVerifyChunk(chunk))
	return rangeLog{log}
}
