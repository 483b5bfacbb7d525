// Package outbox delivers the audit log, durably and at least once, to destinations on an
// operator-configured allow-list. The stored log itself is the retry buffer: for each
// destination the store keeps a cursor (the index of the next entry to deliver), advanced
// only after a batch has been written, so an outage of the destination loses nothing,
// memory stays bounded by one batch, and a restart resumes where delivery stopped. A batch
// cut off by a failure is sent again, with the same entry indexes, so a receiver can drop
// duplicates.
//
// The syslog forwarder (RFC 5425: RFC 5424 messages, octet-counted, over TLS) is the first
// destination; later forwarders (webhooks, subscriptions, PACS) add a sender beside it and
// reuse the cursors, the batching, the backoff and the allow-list. The encoding is package
// audit's (pure); the network and file I/O are here.
package outbox

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Log is the stored audit log, the outbox's retry buffer.
type Log interface {
	// AuditSize returns the number of entries in the log.
	AuditSize(ctx context.Context) (uint64, error)
	// AuditEntries calls fn for the entries with from <= Index < to, in index order.
	AuditEntries(ctx context.Context, from, to uint64, fn func(vitalgate.AuditRecord) error) error
}

// Cursors keeps each destination's position (vitalgate.OutboxStore). Errors: EINVALID for
// an empty destination, EUNAVAILABLE when the store is busy.
type Cursors interface {
	OutboxCursor(ctx context.Context, destination string) (uint64, error)
	SetOutboxCursor(ctx context.Context, destination string, next uint64) error
}

// Config configures an Outbox.
type Config struct {
	Log     Log
	Cursors Cursors
	// Allow lists the HOST:PORT addresses the outbox may deliver to; nothing else is ever
	// dialed. It is operator configuration (serve flags), never data from a request.
	Allow    []string
	Batch    int                                 // entries per write (default 500)
	Interval time.Duration                       // how often to look for new entries (default 1 s)
	OnError  func(destination string, err error) // called on each failed attempt (logging)
	// Backoff is the wait after a failure (default 1 s), doubled after each further one up
	// to MaxBackoff (default 30 s).
	Backoff, MaxBackoff time.Duration
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Log == nil || c.Cursors == nil {
		return errors.New("outbox: a log and a cursor store are required")
	}
	for _, a := range c.Allow {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("outbox: allow-list entry %q is not HOST:PORT", a)
		}
	}
	return nil
}

// Outbox delivers the audit log to allow-listed destinations.
type Outbox struct {
	cfg Config
}

// New returns an Outbox; see Config.
func New(cfg Config) (*Outbox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.Backoff)
	}
	return &Outbox{cfg: cfg}, nil
}

// Allowed reports whether addr (HOST:PORT) is on the allow-list. Host names compare
// without regard to case.
func (o *Outbox) Allowed(addr string) bool {
	return slices.ContainsFunc(o.cfg.Allow, func(a string) bool { return strings.EqualFold(a, addr) })
}

// Destination is one place the log is delivered to, with its own cursor.
type Destination struct {
	o        *Outbox
	name     string // the cursor's key, e.g. "syslog:collector.example:6514"
	addr     string
	tls      *tls.Config
	hostname string
	app      string
	conn     net.Conn
}

// Syslog returns the destination that sends every entry to the syslog collector at addr
// (HOST:PORT) over TLS with tc (RFC 5425), as RFC 5424 messages from hostname and app with
// the entry's index as a structured-data parameter. Its cursor is "syslog:"+addr. It refuses
// an address that is not on the allow-list.
func (o *Outbox) Syslog(addr string, tc *tls.Config, hostname, app string) (*Destination, error) {
	if !o.Allowed(addr) {
		return nil, fmt.Errorf("outbox: %s is not on the allow-list of destinations (serve --outbox-allow)", addr)
	}
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &Destination{o: o, name: "syslog:" + addr, addr: addr, tls: tc, hostname: hostname, app: app}, nil
}

// Name returns the destination's cursor key.
func (d *Destination) Name() string { return d.name }

// ImportCursorFile takes the position from a cursor file an earlier version kept (DIR/
// syslog.cursor, the decimal index of the next entry) when the store has none for d yet,
// so that an upgrade does not resend the whole log. A missing file is not an error.
func (d *Destination) ImportCursorFile(ctx context.Context, path string) error {
	data, err := os.ReadFile(path) // #nosec G304 -- the data dir's own file, named by the wiring
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return fmt.Errorf("syslog cursor %s is corrupt: %w", path, err)
	}
	cur, err := d.o.cfg.Cursors.OutboxCursor(ctx, d.name)
	if err != nil || cur != 0 {
		return err
	}
	return d.o.cfg.Cursors.SetOutboxCursor(ctx, d.name, n)
}

// Run delivers until ctx is done, reconnecting with backoff (1 s doubling to 30 s) after
// failures.
func (d *Destination) Run(ctx context.Context) {
	d.o.run(ctx, d.name, d.Step, d.close)
}

// run calls step until ctx is done: at once again after a batch, after the interval when
// there was nothing to send, and after reset and a backoff (Config.Backoff doubling to
// Config.MaxBackoff) when it failed.
func (o *Outbox) run(ctx context.Context, name string, step func(context.Context) (int, error), reset func()) {
	backoff := o.cfg.Backoff
	defer reset()
	for {
		sent, err := step(ctx)
		switch {
		case err != nil:
			if o.cfg.OnError != nil && ctx.Err() == nil {
				o.cfg.OnError(name, err)
			}
			reset()
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, o.cfg.MaxBackoff)
			continue
		case sent == 0:
			if !sleep(ctx, o.cfg.Interval) {
				return
			}
		}
		backoff = o.cfg.Backoff
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

func (d *Destination) close() {
	if d.conn != nil {
		_ = d.conn.Close()
		d.conn = nil
	}
}

// dial connects to the destination, checking the allow-list again.
func (d *Destination) dial(ctx context.Context) (net.Conn, error) {
	if !d.o.Allowed(d.addr) {
		return nil, fmt.Errorf("%s is not on the allow-list", d.addr)
	}
	td := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: d.tls}
	return td.DialContext(ctx, "tcp", d.addr)
}

// Step sends the next batch of undelivered entries, if any, advances the cursor, and
// returns how many it sent.
func (d *Destination) Step(ctx context.Context) (int, error) {
	next, err := d.o.cfg.Cursors.OutboxCursor(ctx, d.name)
	if err != nil {
		return 0, err
	}
	size, err := d.o.cfg.Log.AuditSize(ctx)
	if err != nil {
		return 0, err
	}
	if next >= size {
		return 0, nil
	}
	if d.conn != nil && !alive(d.conn) {
		d.close() // the collector closed the connection: do not write into the void
	}
	if d.conn == nil {
		if d.conn, err = d.dial(ctx); err != nil {
			return 0, fmt.Errorf("connect to the syslog collector: %w", err)
		}
	}
	end := min(size, next+uint64(max(d.o.cfg.Batch, 1))) // #nosec G115 -- a positive batch size
	w := bufio.NewWriter(d.conn)
	n := 0
	err = d.o.cfg.Log.AuditEntries(ctx, next, end, func(r vitalgate.AuditRecord) error {
		if r.Archived() {
			// Archived before this destination got it (audit archive --skip-outbox): its
			// data is in a segment, not here; the archive's own entry says so.
			n++
			return nil
		}
		e, err := audit.UnmarshalEntry(r.Data)
		if err != nil {
			return fmt.Errorf("audit entry %d: %w", r.Index, err)
		}
		if _, err := w.Write(audit.SyslogFrame(r.Index, e, d.hostname, d.app)); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return 0, err
	}
	_ = d.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("send to the syslog collector: %w", err)
	}
	if err := d.o.cfg.Cursors.SetOutboxCursor(ctx, d.name, next+uint64(n)); err != nil { // #nosec G115 -- n counts entries sent, ≥ 0
		return 0, err
	}
	return n, nil
}

// alive reports whether the collector still holds the connection open. A collector never
// writes, so a short read either times out (alive) or reports its close (EOF). Without it, a
// write into a connection the peer has closed would seem to succeed and lose the batch.
// RFC 5425 has no acknowledgements: a batch written just before the collector fails may
// still be lost by the collector.
func alive(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	var b [1]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
