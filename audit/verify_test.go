package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/audit"
)

const (
	testOrigin = "vitalgate.example/audit"
	logSize    = 100
	every      = 10 // checkpoint interval
)

// testLog is a log of logSize realistic entries, with its own checkpoints every `every`
// entries (sizes 0, 10, …, 100) and a witness copy of the checkpoint at size 100.
type testLog struct {
	log         *memLog
	checkpoints []audit.SignedCheckpoint
	witness     audit.SignedCheckpoint
	signer      *audit.Signer
	roots       map[uint64]hash
}

func newTestLog(t testing.TB) *testLog {
	t.Helper()
	tl := &testLog{log: &memLog{}, signer: MustSigner(t, testOrigin, 1), roots: map[uint64]hash{}}
	var tree audit.Tree
	sign := func() {
		c := audit.Checkpoint{Origin: testOrigin, Size: tree.Size(), Root: tree.Root()}
		tl.roots[c.Size] = c.Root
		tl.checkpoints = append(tl.checkpoints, audit.SignedCheckpoint{Note: MustSign(t, c, tl.signer)})
	}
	sign()
	for i := range logSize {
		data := realisticEntry(i).Marshal()
		tl.log.append(data)
		tree.Append(audit.LeafHash(data))
		if tree.Size()%every == 0 {
			sign()
		}
	}
	last := tl.checkpoints[len(tl.checkpoints)-1]
	tl.witness = audit.SignedCheckpoint{Note: last.Note, Source: "witness.txt", Witness: true}
	return tl
}

// cp returns the index in checkpoints of the checkpoint of the given size.
func cpAt(size int) int { return size / every }

func TestVerifyUntampered(t *testing.T) {
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) { testVerifyUntampered(t, src.chunk) })
	}
}

func testVerifyUntampered(t *testing.T, chunk uint64) {
	tl := newTestLog(t)
	var calls int
	var lastDone, lastTotal uint64
	rep, err := audit.Verify(context.Background(), source(t, tl.log, chunk), append(tl.checkpoints, tl.witness), tl.signer.Verifier(),
		func(done, total uint64) { calls++; lastDone, lastTotal = done, total })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != logSize || rep.Checkpoints != len(tl.checkpoints)+1 || rep.Unsigned != 0 ||
		rep.Root != tl.roots[logSize] || rep.Latest == nil || rep.Latest.Size != logSize {
		t.Errorf("report = %+v", rep)
	}
	var bytes uint64
	for _, e := range tl.log.entries {
		bytes += uint64(len(e.data))
	}
	if rep.Bytes != bytes {
		t.Errorf("Bytes = %d, want %d", rep.Bytes, bytes)
	}
	if calls < 2 || lastDone != logSize || lastTotal != logSize {
		t.Errorf("progress: %d calls, last (%d, %d)", calls, lastDone, lastTotal)
	}
}

func TestVerifyPasses(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(*testLog) []audit.SignedCheckpoint
		entries     uint64
		checkpoints int
		unsigned    uint64
	}{
		{"no checkpoints", func(tl *testLog) []audit.SignedCheckpoint { return nil }, logSize, 0, logSize},
		{"checkpoints in any order of witnesses", func(tl *testLog) []audit.SignedCheckpoint {
			w := tl.checkpoints[3]
			w.Witness = true
			return append([]audit.SignedCheckpoint{w}, tl.checkpoints[:5]...)
		}, logSize, 6, logSize - 40},
		{"entries appended since the last checkpoint", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.append(realisticEntry(1000).Marshal())
			return tl.checkpoints
		}, logSize + 1, len(newTestLog(t).checkpoints), 1},
		{"entries appended while verifying are ignored", func(tl *testLog) []audit.SignedCheckpoint {
			n := uint64(logSize - 5)
			tl.log.size = &n
			return tl.checkpoints[:cpAt(90)+1]
		}, logSize - 5, cpAt(90) + 1, 5},
		{"empty log", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.entries = nil
			return tl.checkpoints[:1]
		}, 0, 1, 0},
		{"truncated with every later checkpoint gone and no witness (undetectable)", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.entries = tl.log.entries[:95]
			return tl.checkpoints[:cpAt(90)+1]
		}, 95, cpAt(90) + 1, 5},
	}
	for _, tt := range tests {
		for _, src := range sources {
			t.Run(tt.name+"/"+src.name, func(t *testing.T) {
				tl := newTestLog(t)
				cps := tt.setup(tl)
				rep, err := audit.Verify(context.Background(), source(t, tl.log, src.chunk), cps, tl.signer.Verifier(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Entries != tt.entries || rep.Checkpoints != tt.checkpoints || rep.Unsigned != tt.unsigned {
					t.Errorf("Entries, Checkpoints, Unsigned = %d, %d, %d; want %d, %d, %d",
						rep.Entries, rep.Checkpoints, rep.Unsigned, tt.entries, tt.checkpoints, tt.unsigned)
				}
				if tl2 := newTestLog(t); tt.name == "no checkpoints" && rep.Root != tl2.roots[logSize] {
					t.Errorf("Root = %x, want %x", rep.Root, tl2.roots[logSize])
				}
			})
		}
	}
}

// tamperCase is a way of tampering with a log and the evidence its verification must give.
type tamperCase struct {
	name string
	// tamper changes the log and returns the checkpoints to verify against.
	tamper   func(*testLog) []audit.SignedCheckpoint
	index    uint64 // want VerifyError.Index
	end      uint64 // want VerifyError.End (0: not checked for NoIndex)
	cpSize   int    // size of the checkpoint named, -1 for none
	source   string // want VerifyError.Source, "" for none
	reason   string // a word the reason must contain
	sentinel error  // want errors.Is, if not nil
}

func TestVerifyDetectsTampering(t *testing.T) {
	other := MustSigner(t, testOrigin, 2) // same name, another key
	tests := []tamperCase{
		{"one byte of an entry changed", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.entries[37].data[40] ^= 1
			return tl.checkpoints
		}, 37, 38, -1, "", "stored leaf hash", nil},
		{"entry and its stored hash changed", func(tl *testLog) []audit.SignedCheckpoint {
			e := &tl.log.entries[37]
			e.data = []byte(strings.Replace(string(e.data), `"node":"vitalgate-1"`, `"node":"vitalgate-2"`, 1))
			e.hash = audit.LeafHash(e.data)
			return tl.checkpoints
		}, 30, 40, 40, "checkpoint #5", "changed", nil},
		{"entry deleted, gap left", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.entries = append(tl.log.entries[:37], tl.log.entries[38:]...)
			return tl.checkpoints
		}, 37, 38, -1, "", "missing", nil},
		{"first entry deleted, gap left", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.entries = tl.log.entries[1:]
			return tl.checkpoints
		}, 0, 1, -1, "", "missing", nil},
		{"entry deleted, later entries renumbered", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.entries = append(tl.log.entries[:37], tl.log.entries[38:]...)
			tl.log.renumber()
			return tl.checkpoints
		}, 30, 40, 40, "checkpoint #5", "deleted", nil},
		{"entry inserted, later entries renumbered", func(tl *testLog) []audit.SignedCheckpoint {
			data := realisticEntry(9999).Marshal()
			ins := memEntry{data: data, hash: audit.LeafHash(data)}
			tl.log.entries = append(tl.log.entries[:37], append([]memEntry{ins}, tl.log.entries[37:]...)...)
			tl.log.renumber()
			return tl.checkpoints
		}, 30, 40, 40, "checkpoint #5", "inserted", nil},
		{"entry inserted at the end behind the last checkpoint, duplicated index", func(tl *testLog) []audit.SignedCheckpoint {
			e := tl.log.entries[50]
			tl.log.entries = append(tl.log.entries[:51], append([]memEntry{e}, tl.log.entries[51:]...)...)
			return tl.checkpoints
		}, 50, 51, -1, "", "again", nil},
		{"two entries swapped with their hashes", func(tl *testLog) []audit.SignedCheckpoint {
			es := tl.log.entries
			es[37].data, es[52].data = es[52].data, es[37].data
			es[37].hash, es[52].hash = es[52].hash, es[37].hash
			return tl.checkpoints
		}, 30, 40, 40, "checkpoint #5", "reordered", nil},
		{"two entries swapped, hashes left", func(tl *testLog) []audit.SignedCheckpoint {
			es := tl.log.entries
			es[37].data, es[52].data = es[52].data, es[37].data
			return tl.checkpoints
		}, 37, 38, -1, "", "stored leaf hash", nil},
		{"truncated behind a witness checkpoint", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.entries = tl.log.entries[:95]
			return append(tl.checkpoints[:cpAt(90)+1], tl.witness)
		}, 95, 100, 100, "witness.txt", "truncated", nil},
		{"truncated behind the log's own checkpoint", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.entries = tl.log.entries[:95]
			return tl.checkpoints
		}, 95, 100, 100, "checkpoint #11", "truncated", nil},
		{"truncated and rebuilt behind a witness checkpoint", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.entries = tl.log.entries[:95]
			for i := range 10 {
				tl.log.append(realisticEntry(5000 + i).Marshal())
			}
			return append(tl.checkpoints[:cpAt(90)+1], tl.witness)
		}, 90, 100, 100, "witness.txt", "changed", nil},
		{"store reports more entries than it holds", func(tl *testLog) []audit.SignedCheckpoint {
			n := uint64(logSize + 3)
			tl.log.size = &n
			return tl.checkpoints
		}, logSize, logSize + 3, -1, "", "missing", nil},
		{"forged checkpoint signature", func(tl *testLog) []audit.SignedCheckpoint {
			note := []byte(string(tl.checkpoints[5].Note))
			note[len(note)-10] ^= 1 // inside the base64 signature
			tl.checkpoints[5].Note = note
			return tl.checkpoints
		}, audit.NoIndex, 0, 50, "checkpoint #6", "not validly signed", audit.ErrInvalidSignature},
		{"checkpoint replaced by one signed by another key", func(tl *testLog) []audit.SignedCheckpoint {
			tl.checkpoints[5].Note = MustSign(t, audit.Checkpoint{Origin: testOrigin, Size: 50, Root: tl.roots[50]}, other)
			return tl.checkpoints
		}, audit.NoIndex, 0, 50, "checkpoint #6", "not validly signed", audit.ErrUnknownKey},
		{"witness copy signed by another key", func(tl *testLog) []audit.SignedCheckpoint {
			w := tl.witness
			w.Note = MustSign(t, audit.Checkpoint{Origin: testOrigin, Size: 100, Root: tl.roots[100]}, other)
			return append(tl.checkpoints, w)
		}, audit.NoIndex, 0, 100, "witness.txt", "not validly signed", audit.ErrUnknownKey},
		{"malformed checkpoint", func(tl *testLog) []audit.SignedCheckpoint {
			tl.checkpoints[2].Note = []byte("hello\n")
			return tl.checkpoints
		}, audit.NoIndex, 0, -1, "checkpoint #3", "not validly signed", audit.ErrMalformedNote},
		{"checkpoint of a forked tree, validly signed", func(tl *testLog) []audit.SignedCheckpoint {
			fork := audit.Checkpoint{Origin: testOrigin, Size: 60, Root: audit.LeafHash([]byte("fork"))}
			tl.checkpoints[6].Note = MustSign(t, fork, tl.signer)
			return tl.checkpoints
		}, 50, 60, 60, "checkpoint #7", "does not match", nil},
		{"log's checkpoints shrink (rollback)", func(tl *testLog) []audit.SignedCheckpoint {
			cps := tl.checkpoints
			cps[4], cps[5] = cps[5], cps[4]
			return cps
		}, audit.NoIndex, 0, 40, "checkpoint #6", "rolled back", nil},
		{"checkpoint of another log", func(tl *testLog) []audit.SignedCheckpoint {
			c := audit.Checkpoint{Origin: "other.example/audit", Size: 50, Root: tl.roots[50]}
			tl.checkpoints[5].Note = MustSign(t, c, tl.signer)
			return tl.checkpoints
		}, audit.NoIndex, 0, 50, "checkpoint #6", "other.example/audit", nil},
		{"empty-log checkpoint with a root", func(tl *testLog) []audit.SignedCheckpoint {
			tl.checkpoints[0].Note = MustSign(t, audit.Checkpoint{Origin: testOrigin, Size: 0, Root: tl.roots[10]}, tl.signer)
			return tl.checkpoints
		}, audit.NoIndex, 0, 0, "checkpoint #1", "empty log", nil},
		{"first fault wins: changed entry before truncation", func(tl *testLog) []audit.SignedCheckpoint {
			tl.log.entries = tl.log.entries[:95]
			tl.log.entries[12].data[40] ^= 1
			return append(tl.checkpoints[:cpAt(90)+1], tl.witness)
		}, 12, 13, -1, "", "stored leaf hash", nil},
	}
	for _, tt := range tests {
		for _, src := range sources {
			t.Run(tt.name+"/"+src.name, func(t *testing.T) {
				testTampered(t, tt, src.chunk)
			})
		}
	}
}

// testTampered verifies a log tampered with as tt says, read in mode chunk (see source),
// and checks the error against the evidence wanted.
func testTampered(t *testing.T, tt tamperCase, chunk uint64) {
	tl := newTestLog(t)
	tl.log = tl.log.clone()
	cps := tt.tamper(tl)
	rep, err := audit.Verify(context.Background(), source(t, tl.log, chunk), cps, tl.signer.Verifier(), nil)
	if err == nil {
		t.Fatalf("tampering not detected: %+v", rep)
	}
	var verr *audit.VerifyError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v (%T), want *VerifyError", err, err)
	}
	t.Log(verr)
	if verr.Index != tt.index {
		t.Errorf("Index = %d, want %d", verr.Index, tt.index)
	}
	if tt.index != audit.NoIndex && verr.End != tt.end {
		t.Errorf("End = %d, want %d", verr.End, tt.end)
	}
	switch {
	case tt.cpSize < 0 && verr.Checkpoint != nil:
		t.Errorf("Checkpoint = %v, want none", verr.Checkpoint)
	case tt.cpSize >= 0 && (verr.Checkpoint == nil || verr.Checkpoint.Size != uint64(tt.cpSize)):
		t.Errorf("Checkpoint = %v, want size %d", verr.Checkpoint, tt.cpSize)
	}
	if verr.Source != tt.source {
		t.Errorf("Source = %q, want %q", verr.Source, tt.source)
	}
	if !strings.Contains(verr.Reason, tt.reason) {
		t.Errorf("Reason = %q, want it to mention %q", verr.Reason, tt.reason)
	}
	if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
		t.Errorf("err = %v, want errors.Is %v", err, tt.sentinel)
	}
}

func TestVerifyErrorMessages(t *testing.T) {
	c := &audit.Checkpoint{Origin: "o", Size: 40}
	tests := []struct {
		name string
		err  *audit.VerifyError
		want string
	}{
		{"one entry", &audit.VerifyError{Index: 37, End: 38, Reason: "r"},
			"audit log verification failed at entry 37: r"},
		{"range with checkpoint", &audit.VerifyError{Index: 30, End: 40, Checkpoint: c, Source: "checkpoint #5", Reason: "r"},
			"audit log verification failed in entries 30 to 39 (checkpoint #5, o@40:000000000000): r"},
		{"checkpoint only, with cause", &audit.VerifyError{Index: audit.NoIndex, Source: "w", Reason: "r", Err: audit.ErrUnknownKey},
			"audit log verification failed (w): r: audit: note not signed by the expected key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestVerifyReadErrors(t *testing.T) {
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			tl := newTestLog(t)
			at := uint64(50)
			tl.log.failAt = &at
			_, err := audit.Verify(context.Background(), source(t, tl.log, src.chunk), tl.checkpoints, tl.signer.Verifier(), nil)
			var verr *audit.VerifyError
			if !errors.Is(err, errIO) || errors.As(err, &verr) {
				t.Errorf("read failure: err = %v, want errIO and no VerifyError", err)
			}

			tl = newTestLog(t)
			for range 2 * 4096 {
				tl.log.append([]byte("x"))
			}
			ctx, cancel := context.WithCancel(context.Background())
			_, err = audit.Verify(ctx, source(t, tl.log, src.chunk), nil, tl.signer.Verifier(), func(done, total uint64) {
				if done > 0 {
					cancel()
				}
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled: err = %v, want context.Canceled", err)
			}
		})
	}
}
