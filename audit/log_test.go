package audit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// appendStore is a test double of audit.LogStore that keeps appended entries in memory and
// fails appends while fail is set.
type appendStore struct {
	mu      sync.Mutex
	entries [][]byte
	fail    bool
}

func (s *appendStore) AppendAudit(_ context.Context, es ...[]byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return 0, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "store down")
	}
	first := uint64(len(s.entries))
	s.entries = append(s.entries, es...)
	return first, nil
}

func (s *appendStore) AuditSize(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.entries)), nil
}

func (s *appendStore) AuditEntries(_ context.Context, from, to uint64, fn func(vitalgate.AuditRecord) error) error {
	s.mu.Lock()
	es := s.entries
	s.mu.Unlock()
	for i := from; i < to && i < uint64(len(es)); i++ {
		if err := fn(vitalgate.AuditRecord{Index: i, Data: es[i]}); err != nil {
			return err
		}
	}
	return nil
}

func (s *appendStore) AddAuditCheckpoint(context.Context, vitalgate.AuditCheckpoint) error {
	return nil
}

func (s *appendStore) AuditCheckpoints(context.Context) ([]vitalgate.AuditCheckpoint, error) {
	return nil, nil
}

// decoded returns the stored entries, decoded.
func (s *appendStore) decoded(t *testing.T) []audit.Entry {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]audit.Entry, len(s.entries))
	for i, d := range s.entries {
		e, err := audit.UnmarshalEntry(d)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		out[i] = e
	}
	return out
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func refusal(source string) audit.Entry {
	return audit.Entry{Action: audit.ActionExecute, Type: "authn", Subtype: "token", AgentType: audit.AgentClient,
		AgentID: "-", SourceIP: source, Outcome: audit.OutcomeMinorFailure, OutcomeDesc: "GET /fhir/Observation: invalid token"}
}

func success(i int) audit.Entry {
	return audit.Entry{Action: audit.ActionRead, Type: "rest", Subtype: "read", AgentType: audit.AgentClient,
		AgentID: "ehr", SourceIP: "192.0.2.1", Resources: []string{"Observation/" + string(rune('a'+i%26))}}
}

// decisions is the number of decisions the entries record: each stands for max(1, Occurrences).
func decisions(es []audit.Entry) int {
	n := 0
	for _, e := range es {
		n += max(1, e.Occurrences)
	}
	return n
}

// TestLogFoldsRefusals (issue 13 finding 10): repeated refusals from one source become the
// first entry, written at once, and one entry with their count; nothing else is folded.
func TestLogFoldsRefusals(t *testing.T) {
	tests := []struct {
		name      string
		append    func(ctx context.Context, l *audit.Log) error
		atOnce    int   // entries in the log right after the appends
		after     []int // Occurrences of every entry once the window ended
		decisions int
	}{
		{"300 refusals one by one (bad tokens)", func(ctx context.Context, l *audit.Log) error {
			for range 300 {
				if err := l.Append(ctx, refusal("198.51.100.7")); err != nil {
					return err
				}
			}
			return nil
		}, 1, []int{0, 299}, 300},
		{"one batch of 1000 refusals", func(ctx context.Context, l *audit.Log) error {
			es := make([]audit.Entry, 1000)
			for i := range es {
				es[i] = refusal("198.51.100.7")
				es[i].OutcomeDesc = "EINVALID: entry " + string(rune('0'+i%10)) + " is invalid"
			}
			return l.Append(ctx, es...)
		}, 1, []int{0, 999}, 1000},
		{"two refusals: the second is written as itself", func(ctx context.Context, l *audit.Log) error {
			return l.Append(ctx, refusal("198.51.100.7"), refusal("198.51.100.7"))
		}, 1, []int{0, 0}, 2},
		{"sources fold apart", func(ctx context.Context, l *audit.Log) error {
			for range 3 {
				if err := l.Append(ctx, refusal("198.51.100.7"), refusal("203.0.113.9")); err != nil {
					return err
				}
			}
			return nil
		}, 2, []int{0, 0, 2, 2}, 6},
		{"successes are never folded", func(ctx context.Context, l *audit.Log) error {
			for i := range 50 {
				if err := l.Append(ctx, success(i)); err != nil {
					return err
				}
			}
			return nil
		}, 50, nil, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &appendStore{}
			clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			l := audit.NewLog(st, MustSigner(t, "test/audit", 1), "test/audit", "n1", clk.Now)
			ctx := context.Background()
			if err := tt.append(ctx, l); err != nil {
				t.Fatal(err)
			}
			if got := len(st.decoded(t)); got != tt.atOnce {
				t.Errorf("%d entries written at once, want %d", got, tt.atOnce)
			}
			first := st.decoded(t)[0]
			clk.Add(audit.DefaultRefusalWindow)
			if err := l.Flush(ctx, false); err != nil {
				t.Fatal(err)
			}
			es := st.decoded(t)
			if first.Occurrences != 0 || !first.Time.Equal(es[0].Time) {
				t.Errorf("the first entry changed: %+v", es[0])
			}
			if tt.after != nil {
				var occ []int
				for _, e := range es {
					occ = append(occ, e.Occurrences)
				}
				if len(occ) != len(tt.after) {
					t.Fatalf("entries after the window have occurrences %v, want %v", occ, tt.after)
				}
				// Sources fold apart, in no particular order: compare as multisets.
				count := map[int]int{}
				for i := range occ {
					count[occ[i]]++
					count[tt.after[i]]--
				}
				for o, n := range count {
					if n != 0 {
						t.Errorf("entries after the window have occurrences %v, want %v (%d)", occ, tt.after, o)
					}
				}
			}
			if got := decisions(es); got != tt.decisions {
				t.Errorf("the log records %d decisions, want %d", got, tt.decisions)
			}
		})
	}
}

// TestLogFoldingWindow: the window ends, a refusal after it is written at once again; Close
// writes the counts of windows still open; a window of 0 folds nothing.
func TestLogFoldingWindow(t *testing.T) {
	ctx := context.Background()
	newLog := func(t *testing.T, window time.Duration) (*audit.Log, *appendStore, *clock) {
		st := &appendStore{}
		clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		l := audit.NewLog(st, MustSigner(t, "test/audit", 1), "test/audit", "n1", clk.Now)
		l.SetRefusalWindow(window)
		return l, st, clk
	}
	t.Run("after the window", func(t *testing.T) {
		l, st, clk := newLog(t, time.Minute)
		for range 5 {
			_ = l.Append(ctx, refusal("198.51.100.7"))
		}
		clk.Add(time.Minute)
		if err := l.Append(ctx, refusal("198.51.100.7")); err != nil {
			t.Fatal(err)
		}
		es := st.decoded(t)
		if len(es) != 3 || es[1].Occurrences != 4 || es[2].Occurrences != 0 {
			t.Fatalf("entries %+v, want the first, a count of 4, and the new first", es)
		}
	})
	t.Run("close writes open counts", func(t *testing.T) {
		l, st, _ := newLog(t, time.Hour)
		for range 7 {
			_ = l.Append(ctx, refusal("198.51.100.7"))
		}
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if es := st.decoded(t); len(es) != 2 || es[1].Occurrences != 6 {
			t.Fatalf("entries %+v, want the first and a count of 6", es)
		}
	})
	t.Run("run flushes when it stops", func(t *testing.T) {
		l, st, _ := newLog(t, time.Hour)
		for range 3 {
			_ = l.Append(ctx, refusal("198.51.100.7"))
		}
		rctx, cancel := context.WithCancel(ctx)
		cancel()
		l.Run(rctx, time.Hour, func(err error) { t.Error(err) })
		if es := st.decoded(t); len(es) != 2 || es[1].Occurrences != 2 {
			t.Fatalf("entries %+v, want the first and a count of 2", es)
		}
	})
	t.Run("window 0", func(t *testing.T) {
		l, st, _ := newLog(t, 0)
		for range 4 {
			_ = l.Append(ctx, refusal("198.51.100.7"))
		}
		if n := len(st.decoded(t)); n != 4 {
			t.Fatalf("%d entries, want 4", n)
		}
	})
	t.Run("a first refusal that was not written opens no window", func(t *testing.T) {
		l, st, _ := newLog(t, time.Hour)
		st.fail = true
		if err := l.Append(ctx, refusal("198.51.100.7")); err == nil {
			t.Fatal("Append with the store down: no error")
		}
		st.fail = false
		if err := l.Append(ctx, refusal("198.51.100.7")); err != nil {
			t.Fatal(err)
		}
		if n := len(st.decoded(t)); n != 1 {
			t.Fatalf("%d entries, want the refusal written at once", n)
		}
	})
	t.Run("counts survive a failed flush", func(t *testing.T) {
		l, st, clk := newLog(t, time.Minute)
		for range 4 {
			_ = l.Append(ctx, refusal("198.51.100.7"))
		}
		clk.Add(time.Minute)
		st.fail = true
		if err := l.Flush(ctx, false); err == nil {
			t.Fatal("Flush with the store down: no error")
		}
		st.fail = false
		if err := l.Flush(ctx, false); err != nil {
			t.Fatal(err)
		}
		if es := st.decoded(t); len(es) != 2 || es[1].Occurrences != 3 {
			t.Fatalf("entries %+v, want the first and a count of 3", es)
		}
	})
}
