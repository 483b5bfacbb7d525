package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/backup"
)

// seedManifest is a manifest as Create writes it (the seed of the manifest fuzz test).
var seedManifest = backup.Manifest{ID: "bk-20261203T061947Z-9830feb99a7c", Created: time.Date(2026, 12, 3, 6, 19, 47, 6750534, time.UTC),
	Origin: "vitalgate/733b8704924f3744", Store: "sqlite", AuditSize: 12, LastCheckpoint: 10, Tombstones: 1,
	Tables: map[string]int64{"audit_log": 12, "clients": 1, "resources": 300},
	Files: []backup.File{{Path: "keys/kek-1.key", Size: 45, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{Path: backup.DBPath, Size: 294912, SHA256: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"}}}

// FuzzParseManifest: any text either fails to parse or parses to a manifest that marshals
// and parses back to the same manifest (round trip).
func FuzzParseManifest(f *testing.F) {
	f.Add(seedManifest.Marshal())
	f.Add([]byte("vitalgate-backup v1\nid x\n"))
	f.Add([]byte("vitalgate-backup v1\nfile abc 12 \"a b\"\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		m, err := backup.ParseManifest(text)
		if err != nil {
			return
		}
		again, err := backup.ParseManifest(m.Marshal())
		if err != nil || !bytes.Equal(again.Marshal(), m.Marshal()) {
			t.Fatalf("round trip: %v\n%s\n%s", err, m.Marshal(), again.Marshal())
		}
	})
}

// FuzzReadTombstones: a tombstone list either is refused or every tombstone in it is validly
// signed by the verifier; reading never panics.
func FuzzReadTombstones(f *testing.F) {
	dir := f.TempDir()
	k, err := backup.LoadTombstoneKey(dir, "vitalgate/fuzz", true)
	if err != nil {
		f.Fatal(err)
	}
	line, err := k.Line(backup.Tombstone{ID: "er-0123456789abcdef", At: time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC),
		DataKeys: []string{k.DataKeyID("default", []byte("0123456789abcdef0123456789abcdef"))}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(line)
	f.Add(append(bytes.Clone(line), line...))
	f.Add([]byte(`{"tombstone":"vitalgate-tombstone v1\nid er-1\n\n— x AAAA\n"}` + "\n"))
	v := k.Verifier()
	f.Fuzz(func(t *testing.T, list []byte) {
		ts, err := backup.ReadTombstones(bytes.NewReader(list), v)
		if err != nil {
			return
		}
		for _, tb := range ts {
			if tb.ID == "" || tb.At.IsZero() {
				t.Fatalf("accepted a tombstone without id or time: %+v", tb)
			}
		}
	})
}

// FuzzUnpack: arbitrary bytes given as a backup are refused without a panic and leave no
// directory behind.
func FuzzUnpack(f *testing.F) {
	priv, _, err := backup.GenerateRecoveryKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	sk, err := backup.ParseRecoveryKey(priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("VGBACKUP1\n\x00\x10\x00\x01\x00\x02\x00\x41"))
	f.Add([]byte("VGBACKUP1\n"))
	f.Add([]byte{})
	s, err := audit.NewSigner("vitalgate/fuzz", mustKey(f))
	if err != nil {
		f.Fatal(err)
	}
	v := s.Verifier()
	f.Fuzz(func(t *testing.T, data []byte) {
		to := filepath.Join(t.TempDir(), "r")
		if _, err := backup.Unpack(context.Background(), bytes.NewReader(data), sk, &v, to); err == nil {
			t.Fatal("random bytes unpacked")
		}
		if _, err := os.Stat(to); err == nil {
			t.Fatal("a refused backup left its directory")
		}
	})
}

func mustKey(f *testing.F) []byte {
	k, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// FuzzParseSegment: any text either fails to parse as a segment description or parses to one
// that marshals and parses back to the same description (round trip); retentions too.
func FuzzParseSegment(f *testing.F) {
	seed := backup.Segment{ID: "as-0-10-0a1b2c3d", Origin: "vitalgate/733b8704924f3744", From: 4, To: 10,
		Prefix: [][audit.HashSize]byte{{1}}, Root: [audit.HashSize]byte{2}, Before: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		LastTime: time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), Retention: backup.DefaultRetention,
		KeepUntil: time.Date(2031, 12, 31, 23, 0, 0, 0, time.UTC), Created: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		Checkpoints: 2, Digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	f.Add(seed.Marshal())
	f.Add([]byte("vitalgate-audit-segment v1\nprefix\n"))
	f.Add([]byte("vitalgate-audit-segment v1\nretention 1y30d\nprefix 1 AA==\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		s, err := backup.ParseSegment(text)
		if err == nil {
			again, err := backup.ParseSegment(s.Marshal())
			if err != nil || !bytes.Equal(again.Marshal(), s.Marshal()) {
				t.Fatalf("round trip: %v\n%s\n%s", err, s.Marshal(), again.Marshal())
			}
		}
		if r, err := backup.ParseRetention(string(text)); err == nil {
			if again, err := backup.ParseRetention(r.String()); err != nil || again != r {
				t.Fatalf("retention round trip: %q -> %v -> %v %v", text, r, again, err)
			}
		}
	})
}
