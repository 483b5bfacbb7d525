package storetest

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

func (s *suite) archiveTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Audit/Archive", s.testAuditArchive},
		{"Audit/ArchiveRefused", s.testAuditArchiveRefused},
	}
}

// archiveLog appends n indexed audit entries and returns their leaf hashes.
func archiveLog(t *testing.T, st vitalgate.Store, n int) [][32]byte {
	t.Helper()
	var hs [][32]byte
	for i := range n {
		e := audit.Entry{Time: at(i), Action: audit.ActionRead, Type: "rest", Subtype: "read", Outcome: audit.OutcomeSuccess,
			AgentType: audit.AgentClient, AgentID: "archive-agent", Site: vitalgate.DefaultSite}.Marshal()
		if _, err := st.AppendAudit(ctxT(t), e); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, audit.LeafHash(e))
	}
	return hs
}

func testSegment(id string, from, to uint64) vitalgate.AuditSegment {
	last := at(int(to)) // #nosec G115 -- the tests' indexes are small
	return vitalgate.AuditSegment{ID: id, From: from, To: to, Before: at(100), LastTime: last, KeepUntil: last.AddDate(6, 0, 0),
		File: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", CreatedAt: at(200)}
}

// rootOf returns the tree root over the store's leaf hashes (archived entries included).
func rootOf(t *testing.T, st vitalgate.Store) ([32]byte, uint64) {
	t.Helper()
	var tr audit.Tree
	must(t, "AuditEntries", st.AuditEntries(ctxT(t), 0, math.MaxUint64, func(r vitalgate.AuditRecord) error {
		h, err := audit.RecordLeaf(r)
		tr.Append(h)
		return err
	}))
	return tr.Root(), tr.Size()
}

// testAuditArchive: ArchiveAudit empties the data of a prefix of the log, keeps the leaf
// hashes (so the tree's size and root do not change), appends its audit entry, drops the
// entries from the search index, records the segment, and a second segment continues it.
func (s *suite) testAuditArchive(t *testing.T) {
	st := s.store(t)
	hs := archiveLog(t, st, 6)
	rootBefore, _ := rootOf(t, st)
	archiveEntry := []byte(`{"time":"2030-01-01T00:00:00Z","action":"E","type":"system","subtype":"archive"}`)
	must(t, "ArchiveAudit", st.ArchiveAudit(ctxT(t), testSegment("seg-a", 0, 4), hs[:4], archiveEntry))
	var got []vitalgate.AuditRecord
	must(t, "AuditEntries", st.AuditEntries(ctxT(t), 0, math.MaxUint64, func(r vitalgate.AuditRecord) error {
		got = append(got, r)
		return nil
	}))
	if len(got) != 7 {
		t.Fatalf("the log holds %d entries after the archive, want 6 and the archive's entry", len(got))
	}
	for i, r := range got {
		wantArchived := i < 4
		if r.Archived() != wantArchived || (wantArchived && !bytes.Equal(r.Hash, hs[i][:])) {
			t.Errorf("entry %d: archived %v (data %d bytes), hash %x; want archived %v with its leaf hash", i, r.Archived(), len(r.Data), r.Hash, wantArchived)
		}
	}
	checkBytes(t, "the archive's entry", got[6].Data, archiveEntry)
	var tr audit.Tree
	for _, h := range hs {
		tr.Append(h)
	}
	if tr.Root() != rootBefore {
		t.Fatal("the test's tree is wrong")
	}
	tr.Append(audit.LeafHash(archiveEntry))
	if root, size := rootOf(t, st); root != tr.Root() || size != 7 {
		t.Errorf("the tree over the archived log has size %d and another root than before the archive", size)
	}
	var found []uint64
	must(t, "AuditSearch", st.AuditSearch(ctxT(t), vitalgate.AuditQuery{AgentID: "archive-agent", Limit: 100}, func(r vitalgate.AuditRecord) error {
		found = append(found, r.Index)
		return nil
	}))
	if len(found) != 2 || found[0] != 5 || found[1] != 4 {
		t.Errorf("a search finds entries %v, want the live 5 and 4 only", found)
	}
	must(t, "ArchiveAudit", st.ArchiveAudit(ctxT(t), testSegment("seg-b", 4, 6), hs[4:6]))
	segs, err := st.AuditSegments(ctxT(t))
	must(t, "AuditSegments", err)
	if len(segs) != 2 {
		t.Fatalf("AuditSegments = %v, want seg-a and seg-b", segs)
	}
	want := testSegment("seg-a", 0, 4)
	g := segs[0]
	if g.ID != want.ID || g.From != 0 || g.To != 4 || g.File != want.File || segs[1].ID != "seg-b" || segs[1].From != 4 || segs[1].To != 6 {
		t.Errorf("AuditSegments = %+v", segs)
	}
	checkTime(t, "Before", g.Before, want.Before)
	checkTime(t, "LastTime", g.LastTime, want.LastTime)
	checkTime(t, "KeepUntil", g.KeepUntil, want.KeepUntil)
	checkTime(t, "CreatedAt", g.CreatedAt, want.CreatedAt)
	if _, err := st.AppendAudit(ctxT(t), []byte("after")); err != nil {
		t.Fatalf("append after an archive: %v", err)
	}
	if n := auditSize(t, st); n != 8 {
		t.Errorf("AuditSize = %d after the archives and one more entry, want 8", n)
	}
}

// testAuditArchiveRefused: an archive that does not start where the archived prefix ends,
// goes beyond the log, names a leaf hash that is not the stored one, reuses an id or is
// malformed is refused, with nothing changed and its audit entry not appended.
func (s *suite) testAuditArchiveRefused(t *testing.T) {
	st := s.store(t)
	hs := archiveLog(t, st, 4)
	must(t, "ArchiveAudit", st.ArchiveAudit(ctxT(t), testSegment("seg-1", 0, 1), hs[:1]))
	bad := hs[1]
	bad[0] ^= 1
	for _, tt := range []struct {
		name   string
		seg    vitalgate.AuditSegment
		hashes [][32]byte
		code   string
	}{
		{"not at the archived end", testSegment("seg-2", 2, 3), hs[2:3], vitalgate.ECONFLICT},
		{"again from 0", testSegment("seg-2", 0, 2), hs[:2], vitalgate.ECONFLICT},
		{"beyond the log", testSegment("seg-2", 1, 9), append(hs[1:4:4], hs[:1]...), vitalgate.EINVALID},
		{"beyond the log, hashes given", testSegment("seg-2", 1, 6), [][32]byte{hs[1], hs[2], hs[3], hs[0], hs[0]}, vitalgate.ECONFLICT},
		{"wrong leaf hash", testSegment("seg-2", 1, 3), [][32]byte{hs[1], bad}, vitalgate.ECONFLICT},
		{"id taken", testSegment("seg-1", 1, 2), hs[1:2], vitalgate.ECONFLICT},
		{"empty span", testSegment("seg-2", 1, 1), nil, vitalgate.EINVALID},
		{"no id", testSegment("", 1, 2), hs[1:2], vitalgate.EINVALID},
		{"bad file digest", func() vitalgate.AuditSegment { g := testSegment("seg-2", 1, 2); g.File = "xyz"; return g }(), hs[1:2], vitalgate.EINVALID},
		{"no keep-until", func() vitalgate.AuditSegment { g := testSegment("seg-2", 1, 2); g.KeepUntil = time.Time{}; return g }(), hs[1:2], vitalgate.EINVALID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			size := auditSize(t, st)
			err := st.ArchiveAudit(ctxT(t), tt.seg, tt.hashes, []byte("refused archive"))
			wantCode(t, "ArchiveAudit", err, tt.code)
			if n := auditSize(t, st); n != size {
				t.Errorf("a refused archive appended its audit entry: size %d, was %d", n, size)
			}
			segs, err := st.AuditSegments(ctxT(t))
			must(t, "AuditSegments", err)
			if len(segs) != 1 {
				t.Errorf("a refused archive recorded a segment: %v", segs)
			}
			must(t, "AuditEntries", st.AuditEntries(ctxT(t), 1, 4, func(r vitalgate.AuditRecord) error {
				if r.Archived() {
					t.Errorf("a refused archive emptied entry %d", r.Index)
				}
				return nil
			}))
		})
	}
}
