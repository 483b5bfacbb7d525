// Package auth authenticates Vitalgate's callers and issues their tokens: one-time enrollment
// secrets and client secrets (stored only as hashes that name their algorithm: argon2id, or
// PBKDF2-HMAC-SHA-256 in a FIPS data dir; verified under a process-wide bound), API client authentication (client_secret_basic and private_key_jwt), OAuth2 access
// tokens with SMART scopes, emergency ("break glass") access, and the administration of API
// clients. It builds the audit entries of each of these decisions.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/vitalgate/vitalgate"
)

// NewSecret returns a random secret of 32 bytes, base64url-encoded without padding (43
// characters), safe to paste into a shell or an HTTP Basic header.
func NewSecret(rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Throttled is the internal cause of an ETHROTTLED error: how long the caller should wait
// before trying again (the HTTP transport sends it as Retry-After).
type Throttled struct {
	Wait time.Duration
}

func (t *Throttled) Error() string { return "throttled for " + t.Wait.String() }

// RetryAfter returns how long the caller of a throttled request should wait, or 0 when err
// says nothing about it.
func RetryAfter(err error) time.Duration {
	var t *Throttled
	if errors.As(err, &t) {
		return t.Wait
	}
	return 0
}

// SecretChecker verifies secrets against stored hashes under a process-wide bound:
// at most a fixed number of hashes run at once, a bounded number of callers wait for a
// turn, and any caller beyond that is refused at once with ETHROTTLED. One SecretChecker is
// shared by everything in the process that verifies secrets (API clients, enrollment), so
// that requests from many addresses together cannot burn more CPU than the bound allows.
//
// A caller with no stored hash (an unknown principal, or one without a secret) passes an
// empty hash: the secret is then hashed against a dummy hash of the same cost and refused,
// so that the answer costs the same work whether the principal exists or not.
type SecretChecker struct {
	slots  chan struct{} // hashes running
	admit  chan struct{} // hashes running or waiting
	dummy  string
	hashes atomic.Uint64
}

// NewSecretChecker returns a SecretChecker running at most concurrent hashes at once (at
// least 1) with at most waiting callers queued behind them. p are the parameters of the
// stored hashes, used for the dummy hash.
func NewSecretChecker(concurrent, waiting int, p HashParams) (*SecretChecker, error) {
	concurrent = max(concurrent, 1)
	waiting = max(waiting, 0)
	secret, err := NewSecret(nil)
	if err != nil {
		return nil, err
	}
	dummy, err := HashSecret(secret, p, nil)
	if err != nil {
		return nil, err
	}
	return &SecretChecker{slots: make(chan struct{}, concurrent), admit: make(chan struct{}, concurrent+waiting), dummy: dummy}, nil
}

// Check reports whether secret matches the stored hash; an empty hash is checked against the
// dummy and never matches. Returns ETHROTTLED when too many checks are running and waiting
// already (retry after a second), EUNAVAILABLE when ctx ends while waiting, and
// ErrMalformedHash (after hashing against the dummy) for a stored hash it cannot read.
func (c *SecretChecker) Check(ctx context.Context, hash, secret string) (bool, error) {
	select {
	case c.admit <- struct{}{}:
	default:
		return false, &vitalgate.Error{Code: vitalgate.ETHROTTLED, Message: "too many authentications at once; retry in a second",
			Err: &Throttled{Wait: time.Second}}
	}
	defer func() { <-c.admit }()
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return false, vitalgate.Unavailable(ctx.Err(), "the server is busy; retry later")
	}
	defer func() { <-c.slots }()
	known := hash != ""
	if !known {
		hash = c.dummy
	}
	ok, err := VerifySecret(hash, secret)
	if err != nil {
		_, _ = VerifySecret(c.dummy, secret)
		ok = false
	}
	c.hashes.Add(1)
	return ok && known, err
}

// InUse returns how many checks are running or waiting.
func (c *SecretChecker) InUse() int { return len(c.admit) }

// Hashes returns how many hashes Check has computed.
func (c *SecretChecker) Hashes() uint64 { return c.hashes.Load() }
