package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/audit"
)

// restoredLog builds the situation of a restore: the original log grew to 20 entries (an
// auditor kept its checkpoint at 20), a backup holds its first 12, and the restored log is
// those 12, the restore entry and 5 more entries, with the epoch record.
func restoredLog(t *testing.T, s *audit.Signer) (orig, restored *memLog, kept []byte, ep audit.Epoch) {
	t.Helper()
	orig = &memLog{}
	for i := range 20 {
		orig.append(realisticEntry(i).Marshal())
	}
	root := func(l *memLog, n int) [audit.HashSize]byte {
		var tr audit.Tree
		for _, e := range l.entries[:n] {
			tr.Append(e.hash)
		}
		return tr.Root()
	}
	kept = MustSign(t, audit.Checkpoint{Origin: s.Name(), Size: 20, Root: root(orig, 20)}, s)
	restored = &memLog{}
	for _, e := range orig.entries[:12] {
		restored.append(e.data)
	}
	ep = audit.Epoch{Number: 2, Start: 12, RestoredAt: time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC), BackupID: "bk-1",
		Anchor:   MustSign(t, audit.Checkpoint{Origin: s.Name(), Size: 12, Root: root(orig, 12)}, s),
		Previous: MustSign(t, audit.Checkpoint{Origin: s.Name(), Size: 10, Root: root(orig, 10)}, s)}
	restored.append(audit.Entry{Time: ep.RestoredAt, Action: audit.ActionExecute, Type: "system", Subtype: audit.RestoreSubtype,
		AgentType: audit.AgentOperator, AgentID: "alice", Resources: []string{ep.Resource()}}.Marshal())
	for i := 100; i < 105; i++ {
		restored.append(realisticEntry(i).Marshal())
	}
	return orig, restored, kept, ep
}

// TestVerifyEpochs: a restored log verifies across its epochs; a checkpoint the auditor kept
// from the earlier epoch, beyond the restore, is reported as superseded (not a failure) by
// VerifyEpochs and still fails plain Verify; a kept checkpoint of the new epoch must match;
// a missing, altered or misplaced epoch record, a changed entry before the restore and a
// restore entry without its record all fail.
func TestVerifyEpochs(t *testing.T) {
	ctx := context.Background()
	s := MustSigner(t, "vitalgate/test", 7)
	v := s.Verifier()
	_, restored, kept, ep := restoredLog(t, s)
	var tr audit.Tree
	for _, e := range restored.entries {
		tr.Append(e.hash)
	}
	own := MustSign(t, audit.Checkpoint{Origin: s.Name(), Size: tr.Size(), Root: tr.Root()}, s)
	stored := []audit.SignedCheckpoint{{Note: ep.Previous, Source: "stored 10"}, {Note: own, Source: "stored 18"}}
	witness := audit.SignedCheckpoint{Note: kept, Source: "kept.txt", Witness: true}

	rep, err := audit.VerifyEpochs(ctx, restored, append(stored, witness), []audit.Epoch{ep}, v, nil)
	if err != nil {
		t.Fatalf("restored log: %v", err)
	}
	if rep.Epochs != 2 || len(rep.Superseded) != 1 || !strings.Contains(rep.Superseded[0], "kept.txt") || rep.Entries != 18 {
		t.Fatalf("report: %+v", rep)
	}
	var ve *audit.VerifyError
	if _, err := audit.Verify(ctx, restored, append(stored, witness), v, nil); !errors.As(err, &ve) {
		t.Fatalf("plain Verify accepts the old epoch's checkpoint: %v", err)
	}

	newer := restored.clone()
	newer.append(realisticEntry(200).Marshal())
	newer.append(realisticEntry(201).Marshal())
	var tr2 audit.Tree
	for _, e := range newer.entries {
		tr2.Append(e.hash)
	}
	badRoot := tr2.Root()
	badRoot[0] ^= 1
	cases := []struct {
		name   string
		log    *memLog
		cps    []audit.SignedCheckpoint
		epochs []audit.Epoch
		want   string
	}{
		{"no epoch record", restored, stored, nil, "records a restore but the data dir has no epoch record"},
		{"anchor of another size", restored, stored, []audit.Epoch{{Number: 2, Start: 11, Anchor: ep.Anchor}}, "the epoch starts at entry 11"},
		{"anchor signed by another key", restored, stored, []audit.Epoch{{Number: 2, Start: 12, Anchor: MustSign(t, audit.Checkpoint{Origin: s.Name(), Size: 12}, MustSigner(t, s.Name(), 9))}}, "not validly signed"},
		{"epoch misnumbered", restored, stored, []audit.Epoch{{Number: 3, Start: 12, Anchor: ep.Anchor}}, "out of order"},
		{"entry before the restore changed", func() *memLog {
			l := restored.clone()
			l.entries[3].data = realisticEntry(999).Marshal()
			l.entries[3].hash = audit.LeafHash(l.entries[3].data)
			return l
		}(), stored[1:], []audit.Epoch{ep}, "does not match"},
		{"entry at the start is not the restore", func() *memLog {
			l := restored.clone()
			l.entries[12].data = realisticEntry(12).Marshal()
			l.entries[12].hash = audit.LeafHash(l.entries[12].data)
			return l
		}(), stored[:1], []audit.Epoch{ep}, "should record the restore"},
		{"kept checkpoint of the new epoch does not match", newer, append(stored, audit.SignedCheckpoint{Note: MustSign(t, audit.Checkpoint{Origin: s.Name(), Size: 12, Root: badRoot}, s), Witness: true}), []audit.Epoch{ep}, "does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := audit.VerifyEpochs(ctx, tc.log, tc.cps, tc.epochs, v, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSignNote: notes that could be taken for a checkpoint, or that hold a blank line, are
// not signed; a signed note opens with its verifier only.
func TestSignNote(t *testing.T) {
	s := MustSigner(t, "vitalgate/test", 7)
	for _, text := range []string{"origin\n12\nroot\n", "a\n\nb\n", "no newline", ""} {
		if _, err := audit.SignNote([]byte(text), s); err == nil {
			t.Errorf("SignNote(%q) signed", text)
		}
	}
	note, err := audit.SignNote([]byte("vitalgate-backup v1\nid x\n"), s)
	if err != nil {
		t.Fatal(err)
	}
	if text, err := audit.OpenNote(note, s.Verifier()); err != nil || string(text) != "vitalgate-backup v1\nid x\n" {
		t.Fatalf("OpenNote: %q %v", text, err)
	}
	if _, err := audit.OpenNote(note, MustSigner(t, "vitalgate/test", 8).Verifier()); err == nil {
		t.Fatal("opened with another key")
	}
}
