package backup_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/backup"
	"github.com/vitalgate/vitalgate/node"
)

// TestArchive archives the older entries of a SQLite data dir's log: the tree keeps its
// size and root (every checkpoint still verifies), an inclusion proof of a retained entry
// still verifies against a checkpoint from before the archive, the segment verifies on its
// own and against the live log, and the archive is in the log. A second archive with no
// newer checkpoint has nothing to do, nor one that would pass an outbox destination's
// cursor (unless it is skipped). A changed segment file, or one signed by another
// audit key, is refused.
func TestArchive(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	old := time.Date(2019, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return old.Add(-time.Hour) }
	if _, err := node.Init(ctx, dir, node.InitOptions{}, node.Env{Now: clock}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, dir, node.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	alog, err := n.AuditLog("test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := n.AuditSigner()
	if err != nil {
		t.Fatal(err)
	}
	size0, _ := n.Store.AuditSize(ctx)
	for i := range 12 {
		if err := alog.Append(ctx, audit.Entry{Time: old.Add(time.Duration(i) * time.Hour), Action: audit.ActionRead, Type: "rest", Subtype: "read",
			AgentType: audit.AgentClient, AgentID: "ehr"}); err != nil {
			t.Fatal(err)
		}
		if i == 5 || i == 9 {
			if _, err := alog.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Newer than the cutoff: stays live.
	if err := alog.Append(ctx, audit.Entry{Action: audit.ActionRead, Type: "rest", Subtype: "read", AgentType: audit.AgentClient, AgentID: "ehr"}); err != nil {
		t.Fatal(err)
	}
	before, err := alog.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	retained := before.Size - 1
	priv, pub, err := backup.GenerateRecoveryKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := backup.ParseRecoveryPublicKey(pub)
	sk, _ := backup.ParseRecoveryKey(priv)
	out := filepath.Join(t.TempDir(), "seg"+backup.SegmentExt)
	req := backup.ArchiveRequest{Store: n.Store, Log: alog, Signer: signer, Before: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Operator: "alice"}
	// An outbox destination that has delivered nothing holds the archive back, unless skipped.
	if err := n.Store.SetOutboxCursor(ctx, "syslog:old.example:6514", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Archive(ctx, req, out, pk); !errors.Is(err, backup.ErrNothingToArchive) || !strings.Contains(err.Error(), "syslog:old.example:6514") {
		t.Fatalf("archive past an outbox cursor = %v, want nothing to archive, naming the destination", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a refused archive wrote its segment")
	}
	req.SkipOutbox = []string{"syslog:old.example:6514"}
	res, err := backup.Archive(ctx, req, out, pk)
	if err != nil {
		t.Fatal(err)
	}
	// The init's entries and the 12 are older; the last checkpoint among them is after the
	// 10th of the 12.
	s := res.Segment
	if s.From != 0 || s.To != size0+10 || s.Checkpoints != 2 || s.Retention != backup.DefaultRetention || !s.KeepUntil.Equal(old.Add(9*time.Hour).AddDate(6, 0, 0)) {
		t.Fatalf("segment %+v", s)
	}
	size, _ := n.Store.AuditSize(ctx)
	if size != before.Size+1 {
		t.Fatalf("the log holds %d entries after the archive, want %d and the archive's entry", size, before.Size)
	}
	cps, _ := n.Store.AuditCheckpoints(ctx)
	rep, err := audit.VerifyEpochs(ctx, audit.StoreLog{Store: n.Store}, audit.SignedCheckpoints(cps), nil, signer.Verifier(), nil)
	if err != nil || rep.Archived != s.To || rep.Entries != size {
		t.Fatalf("the live log after the archive: %v %+v", err, rep)
	}
	proof, err := audit.ProveInclusion(ctx, audit.StoreLog{Store: n.Store}, retained, before.Size)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	_ = n.Store.AuditEntries(ctx, retained, retained+1, func(r vitalgate.AuditRecord) error { data = r.Data; return nil })
	if err := audit.VerifyInclusion(audit.LeafHash(data), retained, before.Size, proof, before.Root); err != nil {
		t.Fatalf("the proof of a retained entry against the checkpoint from before the archive: %v", err)
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := backup.OpenSegment(ctx, bytes.NewReader(file), sk, signer.Verifier())
	if err != nil {
		t.Fatal(err)
	}
	rep, err = audit.VerifyArchive(ctx, audit.StoreLog{Store: n.Store}, audit.SignedCheckpoints(cps), nil, []audit.ArchivedSegment{seg.Content}, signer.Verifier(), nil)
	if err != nil || rep.ArchiveChecked != s.To || len(rep.Segments) != 1 {
		t.Fatalf("the live log with its segment: %v %+v", err, rep)
	}
	if _, err := backup.Archive(ctx, req, filepath.Join(t.TempDir(), "again"+backup.SegmentExt), pk); !errors.Is(err, backup.ErrNothingToArchive) {
		t.Fatalf("a second archive with no newer checkpoint = %v, want ErrNothingToArchive", err)
	}

	other, err := audit.NewSigner(signer.Name(), ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	var forged bytes.Buffer
	if _, err := backup.WriteSegment(&forged, pk, other, s, seg.Content.Entries, seg.Content.Checkpoints); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		file []byte
	}{
		{"a byte changed", func() []byte { b := bytes.Clone(file); b[len(b)/2] ^= 1; return b }()},
		{"truncated", file[:len(file)-20]},
		{"signed by another key", forged.Bytes()},
		{"a backup, not a segment", newFixture(t).file},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := backup.OpenSegment(ctx, bytes.NewReader(tt.file), sk, signer.Verifier()); !errors.Is(err, backup.ErrSegment) {
				t.Fatalf("OpenSegment = %v, want ErrSegment", err)
			}
		})
	}
}

// TestParseRetention: years and/or days; anything else is refused.
func TestParseRetention(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want backup.Retention
		ok   bool
	}{
		{"6y", backup.Retention{Years: 6}, true},
		{"2190d", backup.Retention{Days: 2190}, true},
		{"1y30d", backup.Retention{Years: 1, Days: 30}, true},
		{"0y", backup.Retention{}, false},
		{"6", backup.Retention{}, false},
		{"y", backup.Retention{}, false},
		{"-1y", backup.Retention{}, false},
		{"6years", backup.Retention{}, false},
	} {
		got, err := backup.ParseRetention(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (got != tt.want || got.String() != tt.in)) {
			t.Errorf("ParseRetention(%q) = %v, %v", tt.in, got, err)
		}
	}
}
