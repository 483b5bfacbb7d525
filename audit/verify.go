package audit

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// EntrySource streams a stored log for verification. Stores implement it.
type EntrySource interface {
	// Size returns the number of entries in the log.
	Size(ctx context.Context) (uint64, error)
	// Entries calls fn for every stored entry with index >= from, in index order, passing the
	// entry's stored bytes and its stored leaf hash (all zero if the store keeps none). It
	// stops at the first error fn returns and returns that error. The data slice is only
	// valid during the call to fn.
	Entries(ctx context.Context, from uint64, fn func(index uint64, data []byte, storedLeafHash [HashSize]byte) error) error
}

// SignedCheckpoint is a signed checkpoint note handed to Verify, with where it came from.
type SignedCheckpoint struct {
	// Note is the signed note, as SignCheckpoint returned it.
	Note []byte
	// Source names the checkpoint in reports, e.g. "checkpoint 17" or "witness.txt"; empty
	// means "checkpoint #i" by position.
	Source string
	// Witness marks a copy kept outside the log (by an auditor, a witness, a backup). Such a
	// checkpoint is checked like the others, but is exempt from the rule that the log's own
	// checkpoints, in the order given, never shrink.
	Witness bool
}

// Report sums up a successful verification.
type Report struct {
	Entries     uint64         // entries verified
	Bytes       uint64         // bytes of entries hashed
	Checkpoints int            // checkpoints whose signature and root were verified
	Root        [HashSize]byte // root hash of the Entries verified entries
	Latest      *Checkpoint    // the verified checkpoint with the largest size, nil if none
	// Unsigned is the number of entries after Latest: their hashes chain into Root, but no
	// signed checkpoint covers them yet, so they could be altered without detection.
	Unsigned uint64
	Duration time.Duration // wall time of the verification
	// Epochs is the number of log epochs verified (1 plus one per restore, see VerifyEpochs).
	Epochs int
	// Superseded lists the kept (Witness) checkpoints of an earlier epoch that cover entries
	// lost with a restore: they do not match the restored log, and a restore documents why
	// (VerifyEpochs only; Verify fails on them).
	Superseded []string
	// Archived is the number of entries whose data was archived (the first Archived entries):
	// their stored leaf hashes are in the tree and checked against every checkpoint, and
	// ArchiveChecked of them were also checked against their data in archive segments
	// (VerifyArchive, which lists the segments it read in Segments).
	Archived       uint64
	ArchiveChecked uint64
	Segments       []string
}

// NoIndex is VerifyError.Index when a fault concerns no particular entry.
const NoIndex = ^uint64(0)

// VerifyError is a verification failure, with the evidence: the first entry that fails, or the
// range of entries among which the fault must lie, and the checkpoint that exposed it.
type VerifyError struct {
	// Index is the first bad entry, or the first entry of the range that holds the fault, or
	// NoIndex if the fault concerns only a checkpoint.
	Index uint64
	// End, when greater than Index+1, means the fault lies somewhere in entries [Index, End)
	// and the checkpoints do not allow locating it more precisely (for example a changed
	// entry whose stored leaf hash was changed to match, or an entry inserted or removed with
	// the following entries renumbered). It is Index+1 for a fault at one entry.
	End uint64
	// Checkpoint is the checkpoint that failed or exposed the fault, nil if none. For a
	// checkpoint whose signature did not verify, it is its unverified content, when parseable.
	Checkpoint *Checkpoint
	// Source is the failing checkpoint's SignedCheckpoint.Source (or "checkpoint #i").
	Source string
	// Reason explains the fault in plain English.
	Reason string
	// Err is the underlying error, if any (e.g. ErrInvalidSignature).
	Err error
}

// Error implements the error interface with a plain-English description of the failure.
func (e *VerifyError) Error() string {
	s := "audit log verification failed"
	switch {
	case e.Index == NoIndex:
	case e.End > e.Index+1:
		s += fmt.Sprintf(" in entries %d to %d", e.Index, e.End-1)
	default:
		s += fmt.Sprintf(" at entry %d", e.Index)
	}
	if e.Source != "" {
		s += " (" + e.Source
		if e.Checkpoint != nil {
			s += ", " + e.Checkpoint.String()
		}
		s += ")"
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *VerifyError) Unwrap() error { return e.Err }

// gapError describes an entry with index where entry next was expected: entries missing
// (index > next) or repeated (index < next).
func gapError(next, index uint64) *VerifyError {
	if index < next {
		return &VerifyError{Index: index, End: index + 1,
			Reason: fmt.Sprintf("entry %d appears again after entry %d (entries duplicated or out of order)", index, next-1)}
	}
	reason := fmt.Sprintf("entry 0 is missing: the log starts at entry %d (entries deleted)", index)
	if next > 0 {
		reason = fmt.Sprintf("entry %d is missing: the log goes from entry %d to entry %d (entries deleted)", next, next-1, index)
	}
	return &VerifyError{Index: next, End: next + 1, Reason: reason}
}

// leafOf returns the leaf hash of an entry as Verify sees it: computed from data and checked
// against the stored leaf hash when one is stored, or, for an archived entry (nil data), the
// stored leaf hash itself, which must exist.
func leafOf(index uint64, data []byte, stored [HashSize]byte) (h [HashSize]byte, archived bool, verr *VerifyError) {
	if data == nil {
		if stored == ([HashSize]byte{}) {
			return h, true, &VerifyError{Index: index, End: index + 1,
				Reason: fmt.Sprintf("entry %d has neither data nor a stored leaf hash: it was removed", index)}
		}
		return stored, true, nil
	}
	h = LeafHash(data)
	if h != stored && stored != ([HashSize]byte{}) {
		return h, false, &VerifyError{Index: index, End: index + 1,
			Reason: fmt.Sprintf("entry %d does not match its stored leaf hash: the entry was changed after it was logged", index)}
	}
	return h, false, nil
}

// notPrefix is the fault of an archived entry after a live one: archives move a prefix of the
// log, so the data of a later entry was removed without an archive.
func notPrefix(index uint64) *VerifyError {
	return &VerifyError{Index: index, End: index + 1,
		Reason: fmt.Sprintf("entry %d has no data, but an entry before it does: only the oldest entries are ever archived, so its data was removed", index)}
}

// errStop ends an entry stream early without error.
var errStop = errors.New("stop")

// progressEvery is how many entries pass between progress reports and cancellation checks.
const progressEvery = 1 << 12

// Verify checks a whole stored log against signed checkpoints, offline, holding O(log n) state:
//
//   - every checkpoint must carry a valid signature by v, and all must name the same origin;
//   - the log's own checkpoints (not Witness), in the order given, must never shrink;
//   - entries must come in index order 0, 1, 2… with none missing (a gap names the deleted
//     entry);
//   - every entry's leaf hash is recomputed from its bytes and must equal the stored leaf hash,
//     unless none is stored (all zero) (names a changed entry);
//   - at each checkpoint's size, the root recomputed from the entries must equal the
//     checkpoint's root (catches an entry changed together with its stored hash, insertion,
//     deletion with renumbering, and reordering, and locates the fault between the previous
//     good checkpoint and this one);
//   - no checkpoint may be larger than the log (catches truncation behind a checkpoint kept
//     elsewhere, which is why auditors should keep a Witness copy of a recent checkpoint).
//
// Entries appended after Verify read the log's size are ignored. progress, if not nil, is
// called now and then with the entries done and the total.
//
// Verify returns a *VerifyError for a log that fails verification, naming the first entry or
// checkpoint at fault, and another error if the log could not be read (or ctx was cancelled).
func Verify(ctx context.Context, src EntrySource, checkpoints []SignedCheckpoint, v Verifier, progress func(done, total uint64)) (*Report, error) {
	return verify(ctx, src, checkpoints, v, progress, nil)
}

// verify is Verify; restores lists the sizes at which the log was restored from a backup
// (ascending): a Witness checkpoint larger than one of them that does not match is reported
// in Report.Superseded instead of failing.
func verify(ctx context.Context, src EntrySource, checkpoints []SignedCheckpoint, v Verifier, progress func(done, total uint64), restores []uint64) (*Report, error) {
	start := time.Now()
	total, err := src.Size(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: reading log size: %w", err)
	}

	type pending struct {
		c       Checkpoint
		source  string
		witness bool
	}
	cps := make([]pending, 0, len(checkpoints))
	var lastOwn *pending
	for i, sc := range checkpoints {
		source := sc.Source
		if source == "" {
			source = fmt.Sprintf("checkpoint #%d", i+1)
		}
		c, err := OpenCheckpoint(sc.Note, v)
		if err != nil {
			return nil, &VerifyError{Index: NoIndex, Checkpoint: peekCheckpoint(sc.Note), Source: source,
				Reason: "the checkpoint is not validly signed by " + v.Name(), Err: err}
		}
		p := pending{c, source, sc.Witness}
		if len(cps) > 0 && c.Origin != cps[0].c.Origin {
			return nil, &VerifyError{Index: NoIndex, Checkpoint: &p.c, Source: source,
				Reason: fmt.Sprintf("the checkpoint is for log %q, not %q", c.Origin, cps[0].c.Origin)}
		}
		if !sc.Witness {
			if lastOwn != nil && c.Size < lastOwn.c.Size {
				return nil, &VerifyError{Index: NoIndex, Checkpoint: &p.c, Source: source,
					Reason: fmt.Sprintf("the checkpoint covers %d entries but comes after %s, which covers %d: the log rolled back",
						c.Size, lastOwn.source, lastOwn.c.Size)}
			}
			lastOwn = &p
		}
		cps = append(cps, p)
	}
	slices.SortStableFunc(cps, func(a, b pending) int {
		switch {
		case a.c.Size < b.c.Size:
			return -1
		case a.c.Size > b.c.Size:
			return 1
		}
		return 0
	})

	r := &Report{Epochs: 1 + len(restores)}
	// superseded reports whether p is a kept checkpoint of an earlier epoch, beyond a restore.
	superseded := func(p pending) bool {
		if !p.witness {
			return false
		}
		for _, s := range restores {
			if p.c.Size > s {
				r.Superseded = append(r.Superseded, fmt.Sprintf("%s (%s): covers %d entries, beyond the restore at entry %d; the entries after it were lost with the restore",
					p.source, p.c.String(), p.c.Size, s))
				return true
			}
		}
		return false
	}
	var t Tree
	var seenLive bool // an entry with data was seen: no archived entry may follow
	var good uint64   // size of the last checkpoint that matched: faults lie after it
	// check verifies every checkpoint at the current tree size.
	check := func() *VerifyError {
		for len(cps) > 0 && cps[0].c.Size == t.Size() {
			p := cps[0]
			cps = cps[1:]
			if root := t.Root(); root != p.c.Root {
				if superseded(p) {
					continue
				}
				if p.c.Size == 0 {
					return &VerifyError{Index: NoIndex, Checkpoint: &p.c, Source: p.source,
						Reason: "the checkpoint claims a non-empty root for an empty log"}
				}
				return &VerifyError{Index: good, End: p.c.Size, Checkpoint: &p.c, Source: p.source,
					Reason: fmt.Sprintf("the root of the first %d entries does not match the checkpoint: "+
						"one or more of entries %d to %d were changed, inserted, deleted or reordered since it was signed",
						p.c.Size, good, p.c.Size-1)}
			}
			good = p.c.Size
			r.Checkpoints++
			r.Latest = &p.c
		}
		return nil
	}
	if verr := check(); verr != nil {
		return nil, verr
	}
	if progress != nil {
		progress(0, total)
	}

	var verr *VerifyError
	if rs, ok := src.(RangeSource); ok {
		height := uint(bits.TrailingZeros64(verifyChunk))
		err = chunks(ctx, rs, total, func(c *chunk) error {
			if c.err != nil {
				return c.err
			}
			if len(c.leaves) > 0 && c.first != t.Size() {
				verr = gapError(t.Size(), c.first)
				return errStop
			}
			if c.archived > 0 && seenLive {
				verr = notPrefix(c.first)
				return errStop
			}
			r.Archived += c.archived
			seenLive = seenLive || c.live
			if c.full && t.Size()%verifyChunk == 0 && (len(cps) == 0 || cps[0].c.Size >= t.Size()+verifyChunk) {
				t.appendPerfect(c.root, height) // no checkpoint inside the chunk
				if verr = check(); verr != nil {
					return errStop
				}
			} else {
				for _, h := range c.leaves {
					t.Append(h)
					if verr = check(); verr != nil {
						return errStop
					}
				}
			}
			r.Bytes += c.bytes
			if c.verr != nil {
				verr = c.verr
				return errStop
			}
			if progress != nil {
				progress(t.Size(), total)
			}
			return ctx.Err()
		})
	} else {
		err = src.Entries(ctx, 0, func(index uint64, data []byte, stored [HashSize]byte) error {
			next := t.Size()
			if index >= total {
				return errStop
			}
			if index != next {
				verr = gapError(next, index)
				return errStop
			}
			h, archived, lerr := leafOf(index, data, stored)
			if lerr != nil {
				verr = lerr
				return errStop
			}
			if archived {
				if seenLive {
					verr = notPrefix(index)
					return errStop
				}
				r.Archived++
			}
			seenLive = seenLive || !archived
			t.Append(h)
			r.Bytes += uint64(len(data))
			if verr = check(); verr != nil {
				return errStop
			}
			if t.Size()%progressEvery == 0 {
				if progress != nil {
					progress(t.Size(), total)
				}
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if verr != nil {
		return nil, verr
	}
	if err != nil && !errors.Is(err, errStop) {
		return nil, fmt.Errorf("audit: reading entries: %w", err)
	}
	n := t.Size()
	for len(cps) > 0 && superseded(cps[0]) {
		cps = cps[1:]
	}
	if len(cps) > 0 {
		p := cps[0]
		return nil, &VerifyError{Index: n, End: p.c.Size, Checkpoint: &p.c, Source: p.source,
			Reason: fmt.Sprintf("the checkpoint covers %d entries but the log holds only %d: entries %d to %d were removed (log truncated)",
				p.c.Size, n, n, p.c.Size-1)}
	}
	if n < total {
		return nil, &VerifyError{Index: n, End: total,
			Reason: fmt.Sprintf("the log reports %d entries but only %d could be read: entries %d to %d are missing", total, n, n, total-1)}
	}
	if progress != nil {
		progress(n, total)
	}
	r.Entries = n
	r.Root = t.Root()
	if r.Latest != nil {
		r.Unsigned = n - r.Latest.Size
	} else {
		r.Unsigned = n
	}
	r.Duration = time.Since(start)
	return r, nil
}
