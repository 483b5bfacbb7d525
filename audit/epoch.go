package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Epochs of the log. A log restored from a backup holds a prefix of the entries the original
// log had: entries appended after the backup are gone, and a checkpoint an auditor kept from
// after the backup no longer matches. The restore therefore starts a new epoch: its first
// entry (at index Start, the size of the backup's log) records the restore, and the epoch
// record links it to the backup, by a checkpoint signed when the backup was taken (Anchor,
// at size Start) and the backup's last stored checkpoint (Previous). The tree stays one
// RFC 6962 tree and the checkpoints keep their C2SP format: an independent verifier that
// holds only the public key checks every checkpoint of the live log as before. VerifyEpochs
// also checks the epoch records and reports kept checkpoints of an earlier epoch beyond a
// restore as superseded, not as tampering.

// RestoreSubtype is the subtype of the entry that opens an epoch (type "system").
const RestoreSubtype = "restore"

// Epoch is the record of one restore: epoch Number (2 for the first restore) starts at entry
// Start, which records the restore.
type Epoch struct {
	Number     int       `json:"epoch"`
	Start      uint64    `json:"start"`
	RestoredAt time.Time `json:"restoredAt"`
	BackupID   string    `json:"backupId"`
	// Anchor is a checkpoint of the first Start entries, signed when the backup was taken.
	Anchor []byte `json:"anchor"`
	// Previous is the backup's last stored checkpoint (its size is at most Start), or nil.
	Previous []byte `json:"previous,omitempty"`
}

// Resource names the epoch in the restore entry's Resources ("AuditEpoch/2").
func (e Epoch) Resource() string { return "AuditEpoch/" + strconv.Itoa(e.Number) }

// SignNote returns text, which must end in a newline and hold no blank line, as a signed note
// (https://c2sp.org/signed-note) signed by s. Vitalgate signs backup manifests and erasure
// tombstones this way, with texts whose second line is not a tree size, so that none can be
// taken for a checkpoint.
func SignNote(text []byte, s *Signer) ([]byte, error) {
	if s == nil {
		return nil, errors.New("audit: no signer")
	}
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return nil, errors.New("audit: note text must end in a newline")
	}
	if containsBlankLine(text) {
		return nil, errors.New("audit: note text holds a blank line")
	}
	if _, err := strconv.ParseUint(secondLine(text), 10, 64); err == nil {
		return nil, errors.New("audit: a note whose second line is a number could be taken for a checkpoint")
	}
	return signNote(text, s), nil
}

// OpenNote checks that note is a signed note signed by v and returns its text (with its final
// newline). Errors as OpenCheckpoint.
func OpenNote(note []byte, v Verifier) ([]byte, error) { return openNote(note, v) }

func containsBlankLine(text []byte) bool {
	for i := 1; i < len(text); i++ {
		if text[i] == '\n' && text[i-1] == '\n' {
			return true
		}
	}
	return text[0] == '\n'
}

func secondLine(text []byte) string {
	for i, c := range text {
		if c == '\n' {
			rest := text[i+1:]
			for j, d := range rest {
				if d == '\n' {
					return string(rest[:j])
				}
			}
			return string(rest)
		}
	}
	return ""
}

// MarshalEpochs encodes epoch records (the data dir's audit-epochs.json).
func MarshalEpochs(es []Epoch) ([]byte, error) {
	b, err := json.MarshalIndent(es, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("audit: encoding epochs: %w", err)
	}
	return append(b, '\n'), nil
}

// UnmarshalEpochs decodes epoch records written by MarshalEpochs.
func UnmarshalEpochs(data []byte) ([]Epoch, error) {
	var es []Epoch
	if err := json.Unmarshal(data, &es); err != nil {
		return nil, fmt.Errorf("audit: decoding epochs: %w", err)
	}
	return es, nil
}

// VerifyEpochs is Verify for a log that was restored from backups, epochs being the records
// of the restores in order. In addition to what Verify checks:
//
//   - epochs are numbered 2, 3, … and start at increasing entries;
//   - each epoch's Anchor is a checkpoint signed by v for exactly Start entries, and the log's
//     first Start entries must match it (the restored log is the backup's log); Previous, if
//     any, must verify and match too;
//   - entry Start must be the restore entry naming the epoch (type "system", subtype
//     RestoreSubtype, resource "AuditEpoch/N");
//   - a kept (Witness) checkpoint larger than a restore point that does not match the log is
//     a checkpoint of an earlier epoch: it is listed in Report.Superseded, not a failure.
//     Every other checkpoint must match as in Verify.
//
// A restore entry found without an epoch record fails the verification.
func VerifyEpochs(ctx context.Context, src EntrySource, checkpoints []SignedCheckpoint, epochs []Epoch, v Verifier, progress func(done, total uint64)) (*Report, error) {
	return VerifyArchive(ctx, src, checkpoints, epochs, nil, v, progress)
}

// verifyEpochs is VerifyEpochs over src (which hides archived data from verify) and reveal
// (the same log, with the data of the archived entries that segments hold), returning the
// end of the archived prefix that the log's last archive entry records.
func verifyEpochs(ctx context.Context, src, reveal EntrySource, checkpoints []SignedCheckpoint, epochs []Epoch, v Verifier, progress func(done, total uint64)) (*Report, uint64, error) {
	cps := slices.Clone(checkpoints)
	starts := make([]uint64, 0, len(epochs))
	for i, e := range epochs {
		source := fmt.Sprintf("epoch %d record", e.Number)
		if e.Number != i+2 {
			return nil, 0, &VerifyError{Index: NoIndex, Source: source, Reason: fmt.Sprintf("epoch records out of order: record %d is numbered %d", i+1, e.Number)}
		}
		if i > 0 && e.Start <= epochs[i-1].Start {
			return nil, 0, &VerifyError{Index: NoIndex, Source: source, Reason: fmt.Sprintf("epoch %d starts at entry %d, not after epoch %d (entry %d)", e.Number, e.Start, epochs[i-1].Number, epochs[i-1].Start)}
		}
		c, err := OpenCheckpoint(e.Anchor, v)
		if err != nil {
			return nil, 0, &VerifyError{Index: NoIndex, Source: source, Reason: "the backup's checkpoint is not validly signed by " + v.Name(), Err: err}
		}
		if c.Size != e.Start {
			return nil, 0, &VerifyError{Index: NoIndex, Checkpoint: &c, Source: source,
				Reason: fmt.Sprintf("the backup's checkpoint covers %d entries but the epoch starts at entry %d", c.Size, e.Start)}
		}
		cps = append(cps, SignedCheckpoint{Note: e.Anchor, Source: source + ": checkpoint signed with the backup " + e.BackupID, Witness: true})
		if len(e.Previous) > 0 {
			cps = append(cps, SignedCheckpoint{Note: e.Previous, Source: source + ": the backup's last stored checkpoint", Witness: true})
		}
		starts = append(starts, e.Start)
	}
	r, err := verify(ctx, src, cps, v, progress, starts)
	if err != nil {
		return nil, 0, err
	}
	for _, e := range epochs {
		if err := checkRestoreEntry(ctx, reveal, e); err != nil {
			return nil, 0, err
		}
	}
	// A restore entry without a record: someone removed the record (or forged the entry).
	known := map[uint64]bool{}
	for _, e := range epochs {
		known[e.Start] = true
	}
	var bad *VerifyError
	var archivedEnd uint64
	err = reveal.Entries(ctx, 0, func(index uint64, data []byte, _ [HashSize]byte) error {
		if index >= r.Entries {
			return errStop
		}
		if data == nil {
			return nil // archived, and no segment given for it
		}
		e, err := UnmarshalEntry(data)
		if err != nil || e.Type != "system" {
			return nil
		}
		if end, ok := archiveEnd(e); ok {
			archivedEnd = max(archivedEnd, end)
		}
		if e.Subtype == RestoreSubtype && !known[index] {
			bad = &VerifyError{Index: index, End: index + 1, Reason: fmt.Sprintf("entry %d records a restore but the data dir has no epoch record for it (audit-epochs.json)", index)}
			return errStop
		}
		return nil
	})
	if bad != nil {
		return nil, 0, bad
	}
	if err != nil && !errors.Is(err, errStop) {
		return nil, 0, fmt.Errorf("audit: reading entries: %w", err)
	}
	return r, archivedEnd, nil
}

// checkRestoreEntry checks that entry e.Start records the restore of epoch e.
func checkRestoreEntry(ctx context.Context, src EntrySource, e Epoch) error {
	var found bool
	var verr *VerifyError
	err := src.Entries(ctx, e.Start, func(index uint64, data []byte, _ [HashSize]byte) error {
		found = true
		if data == nil && index == e.Start {
			return errStop // archived, and no segment given for it: its leaf hash is in the tree
		}
		en, err := UnmarshalEntry(data)
		if err != nil || index != e.Start || en.Type != "system" || en.Subtype != RestoreSubtype || !slices.Contains(en.Resources, e.Resource()) {
			verr = &VerifyError{Index: e.Start, End: e.Start + 1,
				Reason: fmt.Sprintf("entry %d should record the restore that starts epoch %d, and does not", e.Start, e.Number)}
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("audit: reading entry %d: %w", e.Start, err)
	}
	if !found {
		return &VerifyError{Index: e.Start, End: e.Start + 1, Reason: fmt.Sprintf("the log ends before entry %d, which should record the restore that starts epoch %d", e.Start, e.Number)}
	}
	if verr != nil {
		return verr
	}
	return nil
}
