package audit

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// Archiving. `vitalgate audit archive` moves the data of the oldest entries, up to a signed
// checkpoint, into a sealed segment file (package backup writes and opens it) and leaves in
// the store only their leaf hashes: the tree keeps its size and root, every checkpoint still
// verifies, and the proofs of the entries that remain work as before. The entry that records
// the archive (type "system", subtype ArchiveSubtype) names the segment and the end of the
// archived prefix, so that VerifyArchive can tell an archive from data removed without one.

// ArchiveSubtype is the subtype of the entry that records an archive (type "system").
const ArchiveSubtype = "archive"

// Resource prefixes of an archive entry: the segment ("AuditSegment/ID") and the end of the
// archived prefix of the log after it ("AuditArchivedTo/N": entries 0 to N-1 are archived).
const (
	SegmentResource    = "AuditSegment/"
	ArchivedToResource = "AuditArchivedTo/"
)

// ArchiveEntry returns the entry that records the archive of entries from to to-1 into
// segment id (the caller fills in the agent and stamps it with Log.Entry or Log.Encode).
func ArchiveEntry(id string, from, to uint64, desc string) Entry {
	return Entry{Action: ActionExecute, Type: "system", Subtype: ArchiveSubtype, Count: int(min(to-from, 1<<31-1)), // #nosec G115 -- bounded just before
		Resources: []string{SegmentResource + id, ArchivedToResource + strconv.FormatUint(to, 10)}, OutcomeDesc: desc}
}

// archiveEnd returns the end of the archived prefix that an archive entry records.
func archiveEnd(e Entry) (uint64, bool) {
	if e.Type != "system" || e.Subtype != ArchiveSubtype {
		return 0, false
	}
	for _, r := range e.Resources {
		if n, ok := strings.CutPrefix(r, ArchivedToResource); ok {
			if end, err := strconv.ParseUint(n, 10, 64); err == nil {
				return end, true
			}
		}
	}
	return 0, false
}

// ArchivedSegment is the content of an opened archive segment, for VerifyArchive: the data
// of entries From to From+len(Entries)-1 and the signed checkpoints it carries.
type ArchivedSegment struct {
	ID          string
	From        uint64
	Entries     [][]byte
	Checkpoints [][]byte
}

// To returns the end of the segment (exclusive).
func (s ArchivedSegment) To() uint64 { return s.From + uint64(len(s.Entries)) }

// VerifyArchive is VerifyEpochs for a log whose oldest entries may be archived. An archived
// entry (nil data) contributes its stored leaf hash to the tree, so the checkpoints are
// checked over the whole log as before; in addition:
//
//   - archived entries must be a prefix of the log (the data of a later entry was removed,
//     not archived), and no longer than the archived prefix that the log's last archive
//     entry records;
//   - for every entry a segment holds, the segment's data must have the entry's leaf hash
//     (and equal the live data, for an entry that is live again after a restore), and every
//     checkpoint the segment carries must match the log.
//
// Report.Archived counts the archived entries, ArchiveChecked those checked against a
// segment's data, and Segments names the segments read. Entries archived in no segment given
// are checked by their leaf hashes only.
func VerifyArchive(ctx context.Context, src EntrySource, checkpoints []SignedCheckpoint, epochs []Epoch, segments []ArchivedSegment, v Verifier, progress func(done, total uint64)) (*Report, error) {
	segs := slices.Clone(segments)
	slices.SortFunc(segs, func(a, b ArchivedSegment) int { return cmpU(a.From, b.From) })
	cps := slices.Clone(checkpoints)
	for i, s := range segs {
		if i > 0 && s.From < segs[i-1].To() {
			return nil, &VerifyError{Index: s.From, End: segs[i-1].To(), Source: "archive segment " + s.ID,
				Reason: fmt.Sprintf("segments %s and %s overlap", segs[i-1].ID, s.ID)}
		}
		for _, n := range s.Checkpoints {
			cps = append(cps, SignedCheckpoint{Note: n, Source: "archive segment " + s.ID + " checkpoint", Witness: true})
		}
	}
	hide := &segmentSource{src: src, segs: segs}
	reveal := &segmentSource{src: src, segs: segs, reveal: true}
	var vs EntrySource = hide
	if _, ok := src.(RangeSource); ok {
		vs = rangeSegmentSource{hide}
	}
	r, end, err := verifyEpochs(ctx, vs, reveal, cps, epochs, v, progress)
	if err != nil {
		return nil, err
	}
	if r.Archived > end {
		return nil, &VerifyError{Index: end, End: r.Archived,
			Reason: fmt.Sprintf("the first %d entries have no data, but the log records archives of the first %d only: the data of entries %d to %d was removed without an archive",
				r.Archived, end, end, r.Archived-1)}
	}
	r.ArchiveChecked = hide.checked.Load()
	for _, s := range segs {
		if s.From >= r.Entries {
			return nil, &VerifyError{Index: s.From, End: s.To(), Source: "archive segment " + s.ID,
				Reason: fmt.Sprintf("the segment holds entries %d to %d, beyond the log's %d entries", s.From, s.To()-1, r.Entries)}
		}
		r.Segments = append(r.Segments, fmt.Sprintf("%s (entries %d to %d)", s.ID, s.From, s.To()-1))
	}
	return r, nil
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// segmentSource checks the entries that segments hold against the log's: an archived entry's
// segment data must have its stored leaf hash, a live entry's must equal it. It passes
// archived entries on with nil data, or, if reveal, with the segment's data.
type segmentSource struct {
	src     EntrySource
	segs    []ArchivedSegment
	reveal  bool
	checked atomic.Uint64
}

func (s *segmentSource) Size(ctx context.Context) (uint64, error) { return s.src.Size(ctx) }

func (s *segmentSource) Entries(ctx context.Context, from uint64, fn func(uint64, []byte, [HashSize]byte) error) error {
	return s.src.Entries(ctx, from, s.wrap(fn))
}

func (s *segmentSource) wrap(fn func(uint64, []byte, [HashSize]byte) error) func(uint64, []byte, [HashSize]byte) error {
	if len(s.segs) == 0 {
		return fn
	}
	return func(index uint64, data []byte, stored [HashSize]byte) error {
		i, ok := slices.BinarySearchFunc(s.segs, index, func(g ArchivedSegment, idx uint64) int {
			switch {
			case g.To() <= idx:
				return -1
			case g.From > idx:
				return 1
			}
			return 0
		})
		if !ok {
			return fn(index, data, stored)
		}
		g := s.segs[i]
		d := g.Entries[index-g.From]
		switch {
		case data != nil && !bytes.Equal(d, data):
			return &VerifyError{Index: index, End: index + 1, Source: "archive segment " + g.ID,
				Reason: fmt.Sprintf("entry %d in the segment differs from the entry in the log", index)}
		case data == nil && (stored == [HashSize]byte{} || LeafHash(d) != stored):
			return &VerifyError{Index: index, End: index + 1, Source: "archive segment " + g.ID,
				Reason: fmt.Sprintf("entry %d in the segment does not have the leaf hash the log keeps for it: the segment does not hold what was archived", index)}
		}
		if !s.reveal {
			s.checked.Add(1)
		}
		if s.reveal && data == nil {
			data = d
		}
		return fn(index, data, stored)
	}
}

// rangeSegmentSource is a segmentSource over a RangeSource, so that Verify reads it in
// parallel chunks.
type rangeSegmentSource struct{ *segmentSource }

func (s rangeSegmentSource) EntryRange(ctx context.Context, from, to uint64, fn func(uint64, []byte, [HashSize]byte) error) error {
	return s.src.(RangeSource).EntryRange(ctx, from, to, s.wrap(fn))
}
