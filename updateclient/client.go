// Package updateclient is the device side of Vitalgate's signed software updates: a TUF 1.0
// client (The Update Framework, theupdateframework.github.io/specification) that asks the
// server which release it is offered, verifies that release through the signed metadata,
// streams the target to disk while checking it, and reports the outcome.
//
// Metadata goes through go-tuf's updater (github.com/theupdateframework/go-tuf/v2), which
// implements the specification's client workflow, over the device's own mutual TLS client:
// it refuses rollback (metadata older than what the device already trusts), freeze (expired
// metadata, with a configurable allowance for clock skew), mix-and-match (metadata other than
// the versions the trusted snapshot and timestamp name) and anything not signed by the
// threshold of trusted keys. Targets do not: go-tuf's DownloadTarget holds the whole file in
// memory, so [Client.Download] streams each target into a temporary file, hashing it on the
// way and reading at most one byte past the signed length, and renames it into place only
// once length and every hash match. A target counts only if the delegated targets role named
// after the device's model lists it; an offer ([Client.Offer]) is a hint that is acted on only
// once its target verifies ([Client.Verify]).
//
// Transient failures (network errors, HTTP 429 and 5xx) are retried with capped exponential
// backoff ([Retry]); refusals are not. Time and sleeping are injected ([Config.Now],
// [Config.Sleep]).
//
// The repository layout is the standard one with consistent snapshots, under
// https://HOST/updates/: metadata/N.root.json, metadata/timestamp.json,
// metadata/N.snapshot.json, metadata/N.targets.json, metadata/N.MODEL.json, and each target
// MODEL/VERSION/FILENAME at targets/MODEL/VERSION/SHA256HEX.FILENAME.
package updateclient

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// Reasons a release is refused. Errors returned by [Client.Verify] and [Client.Download]
// wrap one of them (use errors.Is) together with the underlying evidence (for metadata,
// go-tuf's error, which errors.As can extract).
var (
	// ErrRollback: metadata with a lower version than the trusted one, or another version
	// than the trusted snapshot or timestamp names (a mix-and-match attempt).
	ErrRollback = errors.New("updateclient: metadata version refused (rollback or mix-and-match)")
	// ErrFreeze: expired metadata (a freeze attack or a repository that stopped refreshing).
	ErrFreeze = errors.New("updateclient: expired metadata refused (freeze)")
	// ErrUnsigned: metadata without a threshold of valid signatures by the trusted keys.
	ErrUnsigned = errors.New("updateclient: metadata not signed by the trusted keys")
	// ErrMismatch: metadata whose length or hashes differ from what the trusted metadata
	// names (a mix-and-match attempt).
	ErrMismatch = errors.New("updateclient: metadata does not match the trusted snapshot or timestamp")
	// ErrNotDelegated: a target that the delegated role of this device's model does not
	// list (another model's target, an unknown one, or one listed only elsewhere).
	ErrNotDelegated = errors.New("updateclient: target is not signed for this device's model")
	// ErrLength: a target file longer or shorter than its signed length.
	ErrLength = errors.New("updateclient: target length does not match its signed length")
	// ErrHash: a target file whose hash differs from its signed hash.
	ErrHash = errors.New("updateclient: target hash does not match its signed hash")
	// ErrTooLarge: a target longer than Config.MaxTargetLength.
	ErrTooLarge = errors.New("updateclient: target is larger than this device accepts")
	// ErrNoUpdateService: the server answered 404 for the update endpoints: it serves no
	// updates (an older server, or updates not configured).
	ErrNoUpdateService = errors.New("updateclient: the server has no update service (404 for /updates/)")
)

// StatusError is an HTTP answer the client did not expect.
type StatusError struct {
	Op          string // for example "GET /updates/offer"
	StatusCode  int
	Diagnostics string // the OperationOutcome's diagnostics, if the server sent one
}

// Error implements error.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("updateclient: %s: HTTP %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Diagnostics != "" {
		msg += ": " + e.Diagnostics
	}
	return msg
}

// Client is a device's update client. Its methods are safe for concurrent use; metadata
// refreshes are serialized.
type Client struct {
	cfg  Config
	base *url.URL
	mu   sync.Mutex // serializes metadata refreshes (one metadata directory)
}

// New returns a client for cfg after validating it and creating the directories.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	base, err := url.Parse(cfg.ServerURL)
	if err != nil {
		return nil, fmt.Errorf("updateclient: server URL: %w", err)
	}
	for _, dir := range []string{cfg.MetadataDir, cfg.TargetsDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("updateclient: creating %s: %w", dir, err)
		}
	}
	return &Client{cfg: cfg, base: base}, nil
}

// endpoint returns the absolute URL of an escaped path under the server URL.
func (c *Client) endpoint(path string) string {
	return c.base.JoinPath(path).String() // #nosec G125 -- path is a constant route, or one under targets/ built from a verified target path whose segments Offer.Validate checked (no "..", no slash)
}

// Target is a target that verified through TUF for this device's model: only
// [Client.Verify] makes one, and [Client.Download] accepts nothing else.
type Target struct {
	// Path is the target path, MODEL/VERSION/FILENAME.
	Path string
	// Model and Version are the first two segments of Path.
	Model, Version string
	// Length is the signed length in bytes.
	Length int64
	// Hashes maps each hash algorithm to the signed hex digest.
	Hashes map[string]string
	// Custom is the target's signed "custom" object, or nil.
	Custom json.RawMessage

	info *metadata.TargetFiles
}

// Verify refreshes the TUF metadata (root, timestamp, snapshot, targets, then the delegated
// role of the device's model) and returns the signed description of o's target. It refuses
// an offer for another model, and a target that the model's delegated role does not list,
// and every metadata attack the TUF client workflow detects (see the Err variables).
func (c *Client) Verify(ctx context.Context, o Offer) (*Target, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Model != c.cfg.Model {
		return nil, fmt.Errorf("%w: the offer is for model %q, this device's model is %q", ErrNotDelegated, o.Model, c.cfg.Model)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	up, err := c.updater(ctx)
	if err != nil {
		return nil, err
	}
	if err := up.Refresh(); err != nil {
		return nil, classify("refreshing the update metadata", err)
	}
	info, err := up.GetTargetInfo(o.Target)
	if err != nil {
		if errors.Is(err, &metadata.ErrRepository{}) || errors.Is(err, &metadata.ErrDownload{}) {
			return nil, classify("loading the metadata of model "+c.cfg.Model, err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrNotDelegated, o.Target, err)
	}
	// The target must come from the model's own delegated role: not from the top-level
	// targets, nor from another role.
	role := up.GetTrustedMetadataSet().Targets[c.cfg.Model]
	if role == nil {
		return nil, fmt.Errorf("%w: %s is not listed by the %q role", ErrNotDelegated, o.Target, c.cfg.Model)
	}
	listed, ok := role.Signed.Targets[o.Target]
	if !ok || !listed.Equal(*info) {
		return nil, fmt.Errorf("%w: %s is not listed by the %q role", ErrNotDelegated, o.Target, c.cfg.Model)
	}
	return c.target(o, listed)
}

// target checks a verified target's length and hash algorithms and wraps it.
func (c *Client) target(o Offer, info *metadata.TargetFiles) (*Target, error) {
	if info.Length < 0 {
		return nil, fmt.Errorf("%w: %s: negative signed length", ErrLength, o.Target)
	}
	if info.Length > c.cfg.MaxTargetLength {
		return nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrTooLarge, o.Target, info.Length, c.cfg.MaxTargetLength)
	}
	if len(info.Hashes["sha256"]) != 32 {
		return nil, fmt.Errorf("%w: %s has no sha256 hash in its signed metadata", ErrHash, o.Target)
	}
	t := &Target{Path: o.Target, Model: o.Model, Version: o.Version, Length: info.Length, Hashes: map[string]string{}, info: info}
	for alg, sum := range info.Hashes {
		if _, err := newHash(alg); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrHash, o.Target, err)
		}
		t.Hashes[alg] = hex.EncodeToString(sum)
	}
	if info.Custom != nil {
		t.Custom = bytes.Clone(*info.Custom)
	}
	return t, nil
}

// updater returns a go-tuf updater for one refresh: it starts from the newest root this
// device verified (or the provisioned one), reads and keeps metadata in MetadataDir, fetches
// over the device's client, and judges expiry at Now minus ClockSkew.
func (c *Client) updater(ctx context.Context) (*updater.Updater, error) {
	var roots [][]byte
	if cached, err := os.ReadFile(filepath.Join(c.cfg.MetadataDir, "root.json")); err == nil {
		roots = append(roots, cached)
	}
	roots = append(roots, c.cfg.TrustedRoot)
	var errs []error
	for _, root := range roots {
		ucfg, err := config.New(c.endpoint(PathMetadata), root)
		if err != nil {
			return nil, fmt.Errorf("updateclient: %w", err)
		}
		ucfg.LocalMetadataDir = c.cfg.MetadataDir
		ucfg.LocalTargetsDir = c.cfg.TargetsDir
		ucfg.RemoteTargetsURL = c.endpoint(PathTargets)
		ucfg.Fetcher = &fetcher{c: c, ctx: ctx}
		up, err := updater.New(ucfg)
		if err != nil {
			errs = append(errs, err)
			continue // a damaged cached root: start again from the provisioned one
		}
		up.UnsafeSetRefTime(c.cfg.Now().Add(-c.cfg.ClockSkew).UTC())
		return up, nil
	}
	return nil, fmt.Errorf("updateclient: loading the trusted root: %w", errors.Join(errs...))
}

// classify wraps a go-tuf error with the refusal reason it stands for.
func classify(what string, err error) error {
	var kind error
	switch {
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		kind = ErrFreeze
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		kind = ErrRollback
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		kind = ErrUnsigned
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}), errors.Is(err, &metadata.ErrDownloadLengthMismatch{}):
		kind = ErrMismatch
	}
	var he *metadata.ErrDownloadHTTP
	if errors.As(err, &he) && he.StatusCode == http.StatusNotFound && strings.HasSuffix(he.URL, "/timestamp.json") {
		kind = ErrNoUpdateService
	}
	if kind == nil {
		return fmt.Errorf("updateclient: %s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", kind, what, err)
}

// Offer asks the server which release the device's rollout offers it. It returns false when
// nothing is offered (204), and ErrNoUpdateService when the server answers 404.
func (c *Client) Offer(ctx context.Context) (Offer, bool, error) {
	status, body, err := c.exchange(ctx, http.MethodGet, PathOffer, nil)
	if err != nil {
		return Offer{}, false, err
	}
	switch status {
	case http.StatusNoContent:
		return Offer{}, false, nil
	case http.StatusOK:
		o, err := ParseOffer(body)
		if err != nil {
			return Offer{}, false, err
		}
		return o, true, nil
	case http.StatusNotFound:
		return Offer{}, false, fmt.Errorf("%w: %w", ErrNoUpdateService, &StatusError{Op: "GET /" + PathOffer, StatusCode: status, Diagnostics: Diagnostics(body)})
	}
	return Offer{}, false, &StatusError{Op: "GET /" + PathOffer, StatusCode: status, Diagnostics: Diagnostics(body)}
}

// Report tells the server how the release r.Version is doing on this device.
func (c *Client) Report(ctx context.Context, r Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.Reason = strings.ToValidUTF8(r.Reason, "?")
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("updateclient: encoding the report: %w", err)
	}
	status, answer, err := c.exchange(ctx, http.MethodPost, PathReport, body)
	switch {
	case err != nil:
		return err
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNoUpdateService, &StatusError{Op: "POST /" + PathReport, StatusCode: status, Diagnostics: Diagnostics(answer)})
	}
	return &StatusError{Op: "POST /" + PathReport, StatusCode: status, Diagnostics: Diagnostics(answer)}
}

// exchange sends one small request (retrying transient failures) and returns the final
// status and body.
func (c *Client) exchange(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var status int
	var answer []byte
	op := method + " /" + path
	err := c.retry(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		resp, err := c.do(ctx, method, c.endpoint(path), rd)
		if err != nil {
			return transient(fmt.Errorf("updateclient: %s: %w", op, err))
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxOfferBytes+1))
		if err != nil {
			return transient(fmt.Errorf("updateclient: %s: reading the answer: %w", op, err))
		}
		status, answer = resp.StatusCode, b
		if retryable(status) {
			return transientStatus(&StatusError{Op: op, StatusCode: status, Diagnostics: Diagnostics(b)}, resp.Header)
		}
		return nil
	})
	return status, answer, err
}

// do sends one request with the client's headers.
func (c *Client) do(ctx context.Context, method, u string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, */*")
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	return c.cfg.HTTPClient.Do(req)
}

// retryable reports whether an HTTP status is worth another attempt.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// transientError marks a failure that another attempt may not repeat; after is the wait
// the server asked for (Retry-After), if any.
type transientError struct {
	err   error
	after time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error) error { return &transientError{err: err} }

// transientStatus marks an HTTP answer worth another attempt, keeping its Retry-After.
func transientStatus(err error, h http.Header) error {
	te := &transientError{err: err}
	if secs, perr := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); perr == nil && secs > 0 {
		te.after = time.Duration(secs) * time.Second
	}
	return te
}

// retry runs op until it succeeds, fails with a non-transient error, the attempts run out or
// ctx is done, sleeping Retry.Backoff(i) between attempts, or longer when the server asked
// for it with Retry-After (never longer than Retry.Max). It returns op's last error, without
// the transient mark.
func (c *Client) retry(ctx context.Context, op func(context.Context) error) error {
	var err error
	var after time.Duration
	for i := range c.cfg.Retry.Attempts {
		if i > 0 {
			wait := min(max(c.cfg.Retry.Backoff(i-1), after), c.cfg.Retry.Max)
			if serr := c.cfg.Sleep(ctx, wait); serr != nil {
				return fmt.Errorf("%w (after: %w)", serr, err)
			}
		}
		err = op(ctx)
		var te *transientError
		if !errors.As(err, &te) {
			return err
		}
		err, after = te.err, te.after
		if ctx.Err() != nil {
			return err
		}
	}
	return err
}
