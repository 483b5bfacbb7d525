package assess

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// GuessesPerID is how many default credentials the assessment tries for one client or
// device id: one. A server that throttles failed authentications per (id, address) —
// Vitalgate allows 5 a minute, fewer on each node of a cluster — then still lets the real
// client with that id (an operator's "admin") authenticate from the assessor's address: the
// assessment never locks anybody out but its own probe id.
const GuessesPerID = 1

// ProbeClientID is the client id of the rate-limit burst: an id no deployment registers, so
// that the lockout the burst provokes (that is what it looks for) hits nobody else.
const ProbeClientID = "vitalgate-assess-probe"

// limiterLedger records what the assessment did to the server's failure limiter, so that the
// report can say it.
type limiterLedger struct {
	mu      sync.Mutex
	tries   map[string]int // "endpoint\x00id" -> failed attempts
	skipped []string
	probe   int // burst requests with ProbeClientID
}

// mayTry reports whether another default credential may be tried for id at endpoint, and
// counts it; a guess beyond GuessesPerID is recorded as skipped.
func (l *limiterLedger) mayTry(endpoint, id, label string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tries == nil {
		l.tries = map[string]int{}
	}
	k := endpoint + "\x00" + id
	if l.tries[k] >= GuessesPerID {
		l.skipped = append(l.skipped, label)
		return false
	}
	l.tries[k]++
	return true
}

// burst counts n requests of the rate-limit burst.
func (l *limiterLedger) burst(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.probe += n
}

// finding is the report's account of the ledger.
func (l *limiterLedger) finding() Finding {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := map[string][]string{}
	for k, n := range l.tries {
		ep, id, _ := strings.Cut(k, "\x00")
		ids[ep] = append(ids[ep], fmt.Sprintf("%s (%d)", id, n))
	}
	var ev []string
	for _, ep := range []string{"token", "est"} {
		if len(ids[ep]) == 0 {
			continue
		}
		sort.Strings(ids[ep])
		what := "POST /.well-known/est/simpleenroll: failed enrollments for device ids"
		if ep == "token" {
			what = "POST /oauth2/token: failed client authentications for client ids"
		}
		ev = append(ev, what+" "+strings.Join(ids[ep], ", "))
	}
	if l.probe > 0 {
		ev = append(ev, fmt.Sprintf("rate-limit burst: %d requests as client id %s (its own; locked out from this address for the server's window, nobody else is)", l.probe, ProbeClientID))
	}
	if len(l.skipped) > 0 {
		ev = append(ev, fmt.Sprintf("not tried, to stay at %d guess per id: %s", GuessesPerID, strings.Join(l.skipped, ", ")))
	}
	return Finding{ID: "limiter-footprint", Severity: Info,
		Title: "What this assessment left in the server's failure limiter",
		Detail: fmt.Sprintf("At most %d failed attempt per client or device id from this address, so a server that allows a few failures per id and address "+
			"(Vitalgate: 5 a minute, 5/N on each of N nodes) still lets the real clients and devices with these ids authenticate from here; "+
			"the counts clear when the server's window ends (a minute for Vitalgate). The failures are in the server's audit log.", GuessesPerID),
		Evidence: strings.Join(ev, "\n")}
}
