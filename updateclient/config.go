package updateclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Endpoint paths under [Config.ServerURL] (the agreed wire contract).
const (
	PathMetadata = "updates/metadata/"
	PathTargets  = "updates/targets/"
	PathOffer    = "updates/offer"
	PathReport   = "updates/report"
)

// Defaults applied by [New] when a field is zero.
const (
	DefaultMaxTargetLength = 4 << 30 // 4 GiB
	DefaultRequestTimeout  = 30 * time.Second
	DefaultStallTimeout    = time.Minute
	DefaultAttempts        = 5
	DefaultInitialBackoff  = time.Second
	DefaultMaxBackoff      = time.Minute
)

// Retry is the capped exponential backoff applied to transient failures (network errors,
// HTTP 429 and 5xx): attempt i (from 0) waits min(Initial·2^i, Max) before attempt i+1, or
// the server's Retry-After (seconds) if that is longer, still capped at Max. Verification
// failures and other 4xx answers are never retried.
type Retry struct {
	// Attempts is the number of tries in all, first one included (default 5).
	Attempts int
	// Initial is the wait after the first failure (default 1 s).
	Initial time.Duration
	// Max caps every wait (default 1 min).
	Max time.Duration
}

// Config configures a [Client].
type Config struct {
	// ServerURL is the server's base URL, https://HOST[:PORT]; metadata, targets, offers and
	// reports live under its /updates/ ([PathMetadata] and the others).
	ServerURL string
	// HTTPClient is the device's mutual TLS client: it presents the device certificate and
	// trusts only the server's CA. It should follow no redirects. Its Timeout, if set, bounds
	// whole target downloads too: leave it zero and rely on RequestTimeout and StallTimeout.
	HTTPClient *http.Client
	// TrustedRoot is the root.json the device was provisioned with. The client starts from
	// it only while MetadataDir holds no root.json yet; afterwards it starts from the newest
	// root it verified.
	TrustedRoot []byte
	// MetadataDir is where the verified metadata is kept (created 0700 if missing). It is
	// what makes rollback detectable across restarts: keep it on persistent storage.
	MetadataDir string
	// TargetsDir is where verified targets are written (created 0700 if missing).
	TargetsDir string
	// Model is the device model id: the delegated targets role whose targets this device
	// accepts, paths MODEL/VERSION/FILENAME.
	Model string

	// ClockSkew is how far the device clock may run ahead of the repository's (TUF spec
	// #137: devices without a real-time clock): metadata counts as expired only once it
	// expired more than ClockSkew before Now. Zero tolerates no skew. It weakens freeze
	// protection by the same amount: keep it small next to the timestamp's lifetime.
	ClockSkew time.Duration
	// MaxTargetLength refuses, before downloading, any target longer than this (default
	// 4 GiB).
	MaxTargetLength int64
	// RequestTimeout bounds each metadata, offer and report exchange (default 30 s).
	RequestTimeout time.Duration
	// StallTimeout aborts (and retries) a target download that receives no byte for this
	// long (default 1 min).
	StallTimeout time.Duration
	// Retry is the backoff for transient failures.
	Retry Retry
	// UserAgent, if set, is sent with every request.
	UserAgent string

	// Now gives the device's time (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx is done, returning ctx.Err() then (default: a timer).
	// Tests inject one that records the waits.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Validate reports whether c is usable: an https server URL, an HTTP client, a trusted root,
// both directories, a model id, and no negative duration, length or attempt count.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.ServerURL)
	switch {
	case c.ServerURL == "":
		errs = append(errs, errors.New("updateclient: server URL is required"))
	case err != nil:
		errs = append(errs, fmt.Errorf("updateclient: server URL: %w", err))
	case u.Scheme != "https" || u.Host == "":
		errs = append(errs, fmt.Errorf("updateclient: server URL %q must be https://host[:port]", c.ServerURL))
	}
	if c.HTTPClient == nil {
		errs = append(errs, errors.New("updateclient: the device's mutual TLS HTTP client is required"))
	}
	if len(c.TrustedRoot) == 0 {
		errs = append(errs, errors.New("updateclient: the provisioned trusted root.json is required"))
	}
	if c.MetadataDir == "" || c.TargetsDir == "" {
		errs = append(errs, errors.New("updateclient: a metadata directory and a targets directory are required"))
	}
	if err := checkSegment(c.Model); err != nil {
		errs = append(errs, fmt.Errorf("updateclient: model %q: %v", c.Model, err))
	}
	if c.ClockSkew < 0 || c.RequestTimeout < 0 || c.StallTimeout < 0 || c.Retry.Initial < 0 || c.Retry.Max < 0 {
		errs = append(errs, errors.New("updateclient: durations must not be negative"))
	}
	if c.MaxTargetLength < 0 || c.Retry.Attempts < 0 {
		errs = append(errs, errors.New("updateclient: the target length limit and the attempt count must not be negative"))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with the zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxTargetLength == 0 {
		c.MaxTargetLength = DefaultMaxTargetLength
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.Retry.Attempts == 0 {
		c.Retry.Attempts = DefaultAttempts
	}
	if c.Retry.Initial == 0 {
		c.Retry.Initial = DefaultInitialBackoff
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = DefaultMaxBackoff
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	return c
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Backoff returns the wait after failed attempt i (from 0): min(Initial·2^i, Max).
func (r Retry) Backoff(i int) time.Duration {
	d := r.Initial
	for ; i > 0 && d < r.Max; i-- {
		d *= 2
	}
	return min(d, r.Max)
}
