package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
)

// SyslogIndexed is Syslog with the entry's index in the log as the structured-data
// parameter index, so that a collector can tell a resent line from a new one.
func SyslogIndexed(index uint64, e Entry, hostname, app string) string {
	return strings.Replace(Syslog(e, hostname, app), "["+SyslogSDID, "["+SyslogSDID+` index="`+strconv.FormatUint(index, 10)+`"`, 1)
}

// Forwarder sends the audit log to a syslog collector over TLS (RFC 5425: octet-counted
// RFC 5424 messages). The log itself, in the store, is the retry queue: the forwarder keeps
// only the index of the next entry to send, in a cursor file, and advances it after a batch
// has been written. A collector outage therefore loses nothing, and memory stays bounded by
// one batch; delivery is at least once (a batch cut off by a failure is sent again, with the
// same index parameters). RFC 5425 has no acknowledgements: a batch written just before the
// collector fails may be lost by the collector; the forwarder detects a closed connection
// before each batch, so a collector that is down or restarting loses nothing.
type Forwarder struct {
	Store      AuditReader
	Dial       func(ctx context.Context) (net.Conn, error) // opens the TLS connection to the collector
	CursorFile string                                      // where the next index to send is kept
	Hostname   string
	App        string
	Batch      int           // entries per write (default 500)
	Interval   time.Duration // how often to look for new entries (default 1 s)
	OnError    func(error)   // called on each failed attempt (logging)

	conn net.Conn
}

// Run forwards until ctx is done, reconnecting with backoff after failures.
func (f *Forwarder) Run(ctx context.Context) {
	if f.Batch <= 0 {
		f.Batch = 500
	}
	if f.Interval <= 0 {
		f.Interval = time.Second
	}
	backoff := time.Second
	defer f.close()
	for {
		sent, err := f.Step(ctx)
		switch {
		case err != nil:
			if f.OnError != nil && ctx.Err() == nil {
				f.OnError(err)
			}
			f.close()
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		case sent == 0:
			if !sleep(ctx, f.Interval) {
				return
			}
		}
		backoff = time.Second
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (f *Forwarder) close() {
	if f.conn != nil {
		_ = f.conn.Close()
		f.conn = nil
	}
}

// Step sends the next batch of unsent entries, if any, and returns how many it sent.
func (f *Forwarder) Step(ctx context.Context) (int, error) {
	next, err := f.cursor()
	if err != nil {
		return 0, err
	}
	size, err := f.Store.AuditSize(ctx)
	if err != nil {
		return 0, err
	}
	if next >= size {
		return 0, nil
	}
	if f.conn != nil && !alive(f.conn) {
		f.close() // the collector closed the connection: do not write into the void
	}
	if f.conn == nil {
		if f.conn, err = f.Dial(ctx); err != nil {
			return 0, fmt.Errorf("connect to the syslog collector: %w", err)
		}
	}
	end := min(size, next+uint64(max(f.Batch, 1))) // #nosec G115 -- a positive batch size
	w := bufio.NewWriter(f.conn)
	n := 0
	err = f.Store.AuditEntries(ctx, next, end, func(r vitalgate.AuditRecord) error {
		e, err := UnmarshalEntry(r.Data)
		if err != nil {
			return fmt.Errorf("audit entry %d: %w", r.Index, err)
		}
		msg := SyslogIndexed(r.Index, e, f.Hostname, f.App)
		if _, err := w.WriteString(strconv.Itoa(len(msg)) + " " + msg); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return 0, err
	}
	_ = f.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("send to the syslog collector: %w", err)
	}
	if err := f.setCursor(next + uint64(n)); err != nil { // #nosec G115 -- n counts entries sent, ≥ 0
		return 0, err
	}
	return n, nil
}

// alive reports whether the collector still holds the connection open. A collector never
// writes, so a short read either times out (alive) or reports its close (EOF). Without it, a
// write into a connection the peer has closed would seem to succeed and lose the batch.
func alive(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	var b [1]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// cursor reads the index of the next entry to send (0 when there is no cursor file yet).
func (f *Forwarder) cursor() (uint64, error) {
	data, err := os.ReadFile(f.CursorFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("syslog cursor %s is corrupt: %w", f.CursorFile, err)
	}
	return n, nil
}

// setCursor replaces the cursor file atomically (temp file, fsync, rename).
func (f *Forwarder) setCursor(n uint64) error {
	tmp, err := os.CreateTemp(filepath.Dir(f.CursorFile), ".syslog-cursor-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.WriteString(strconv.FormatUint(n, 10) + "\n"); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.CursorFile)
}
