package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/audit"
)

// archivedLog builds a log of 40 entries whose first 20 were archived by the archive entry
// at 30, with checkpoints every 10 entries, and returns it with the archived data.
func archivedLog(t *testing.T, s *audit.Signer) (*memLog, []audit.SignedCheckpoint, [][]byte) {
	t.Helper()
	log := &memLog{}
	for i := range 40 {
		if i == 30 {
			e := audit.ArchiveEntry("seg-1", 0, 20, "archived")
			e.Time, e.AgentType, e.AgentID = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), audit.AgentOperator, "alice"
			log.append(e.Marshal())
			continue
		}
		log.append(realisticEntry(i).Marshal())
	}
	var cps []audit.SignedCheckpoint
	var tr audit.Tree
	for i, e := range log.entries {
		tr.Append(e.hash)
		if (i+1)%10 == 0 {
			cps = append(cps, audit.SignedCheckpoint{Note: MustSign(t, audit.Checkpoint{Origin: s.Name(), Size: tr.Size(), Root: tr.Root()}, s)})
		}
	}
	var data [][]byte
	for i := range 20 {
		data = append(data, log.entries[i].data)
		log.entries[i].data = nil // archived: the store keeps the leaf hash only
	}
	return log, cps, data
}

// TestVerifyArchive: a log whose oldest entries are archived verifies by their leaf hashes,
// and with their segment against their data; a changed segment, data removed from a later
// entry, more entries emptied than the archive entry records, or an archived entry without
// its leaf hash fail, naming the entry.
func TestVerifyArchive(t *testing.T) {
	s := MustSigner(t, "vitalgate.example/audit", 7)
	tests := []struct {
		name      string
		change    func(log *memLog, seg *audit.ArchivedSegment)
		noSegment bool
		wantIndex uint64 // audit.NoIndex: verifies
		checked   uint64
	}{
		{name: "archived, no segment", noSegment: true, wantIndex: audit.NoIndex},
		{name: "with its segment", wantIndex: audit.NoIndex, checked: 20},
		{name: "segment entry changed", change: func(_ *memLog, g *audit.ArchivedSegment) { g.Entries[5] = []byte(`{"time":"x"}`) }, wantIndex: 5},
		{name: "segment of a live entry that differs", change: func(_ *memLog, g *audit.ArchivedSegment) {
			g.Entries = append(g.Entries, []byte("not entry 20"))
		}, wantIndex: 20},
		{name: "data of a later entry removed", change: func(l *memLog, _ *audit.ArchivedSegment) { l.entries[25].data = nil }, wantIndex: 25},
		{name: "more emptied than archived", noSegment: true, change: func(l *memLog, _ *audit.ArchivedSegment) {
			l.entries[20].data, l.entries[21].data = nil, nil
		}, wantIndex: 20},
		{name: "archived entry without leaf hash", noSegment: true, change: func(l *memLog, _ *audit.ArchivedSegment) { l.entries[3].hash = hash{} }, wantIndex: 3},
	}
	for _, src := range sources {
		for _, tt := range tests {
			t.Run(src.name+"/"+tt.name, func(t *testing.T) {
				log, cps, data := archivedLog(t, s)
				seg := audit.ArchivedSegment{ID: "seg-1", From: 0, Entries: data}
				if tt.change != nil {
					tt.change(log, &seg)
				}
				var segs []audit.ArchivedSegment
				if !tt.noSegment {
					segs = append(segs, seg)
				}
				rep, err := audit.VerifyArchive(context.Background(), source(t, log, src.chunk), cps, nil, segs, s.Verifier(), nil)
				if tt.wantIndex == audit.NoIndex {
					if err != nil {
						t.Fatalf("VerifyArchive: %v", err)
					}
					if rep.Entries != 40 || rep.Archived != 20 || rep.ArchiveChecked != tt.checked || rep.Checkpoints != 4 || len(rep.Segments) != len(segs) {
						t.Errorf("report: %d entries, %d archived, %d checked, %d checkpoints, segments %v", rep.Entries, rep.Archived, rep.ArchiveChecked, rep.Checkpoints, rep.Segments)
					}
					return
				}
				var ve *audit.VerifyError
				if !errors.As(err, &ve) || ve.Index != tt.wantIndex {
					t.Fatalf("VerifyArchive = %v, want a fault at entry %d", err, tt.wantIndex)
				}
			})
		}
	}
}

// TestVerifyArchiveWithoutArchiveEntry: emptied entries with no archive entry in the log are
// data removed, not archived.
func TestVerifyArchiveWithoutArchiveEntry(t *testing.T) {
	s := MustSigner(t, "vitalgate.example/audit", 7)
	log := &memLog{}
	for i := range 10 {
		log.append(realisticEntry(i).Marshal())
	}
	var tr audit.Tree
	for _, e := range log.entries {
		tr.Append(e.hash)
	}
	cps := []audit.SignedCheckpoint{{Note: MustSign(t, audit.Checkpoint{Origin: s.Name(), Size: 10, Root: tr.Root()}, s)}}
	log.entries[0].data, log.entries[1].data = nil, nil
	_, err := audit.VerifyArchive(context.Background(), log, cps, nil, nil, s.Verifier(), nil)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Index != 0 {
		t.Fatalf("VerifyArchive = %v, want a fault at entry 0", err)
	}
}
