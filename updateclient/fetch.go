package updateclient

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// fetcher is go-tuf's metadata fetcher over the device's mutual TLS client, with the
// client's retry policy. go-tuf's Fetcher interface has no context, so each refresh makes
// its own fetcher with the context of the call.
type fetcher struct {
	c   *Client
	ctx context.Context
}

// DownloadFile implements go-tuf's fetcher.Fetcher: it returns the body of urlPath, at most
// maxLength bytes. A non-200 answer is a *metadata.ErrDownloadHTTP (go-tuf reads 404 for the
// next root version as "no newer root"); a longer body is a
// *metadata.ErrDownloadLengthMismatch.
func (f *fetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	var data []byte
	err := f.c.retry(f.ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, f.c.cfg.RequestTimeout)
		defer cancel()
		resp, err := f.c.do(ctx, http.MethodGet, urlPath, nil)
		if err != nil {
			return transient(fmt.Errorf("updateclient: GET %s: %w", urlPath, err))
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			herr := &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: urlPath}
			if retryable(resp.StatusCode) {
				return transientStatus(herr, resp.Header)
			}
			return herr
		}
		if resp.ContentLength > maxLength {
			return &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is %d bytes, more than the %d expected", urlPath, resp.ContentLength, maxLength)}
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
		if err != nil {
			return transient(fmt.Errorf("updateclient: GET %s: reading: %w", urlPath, err))
		}
		if int64(len(data)) > maxLength {
			return &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is more than the %d bytes expected", urlPath, maxLength)}
		}
		return nil
	})
	return data, err
}

// newHash returns a hash for a TUF hash algorithm name; only FIPS-approved SHA-2 ones.
func newHash(alg string) (hash.Hash, error) {
	switch alg {
	case "sha256":
		return sha256.New(), nil
	case "sha384":
		return sha512.New384(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("hash algorithm %q is not supported (sha256, sha384, sha512)", alg)
}

// checker hashes a stream with every algorithm a target lists and compares the sums.
type checker struct {
	t      *Target
	hashes map[string]hash.Hash
	n      int64
}

func newChecker(t *Target) *checker {
	ch := &checker{t: t, hashes: make(map[string]hash.Hash, len(t.info.Hashes))}
	for alg := range t.info.Hashes {
		h, _ := newHash(alg) // Verify accepted only known algorithms
		ch.hashes[alg] = h
	}
	return ch
}

// Write implements io.Writer.
func (ch *checker) Write(p []byte) (int, error) {
	for _, h := range ch.hashes {
		h.Write(p)
	}
	ch.n += int64(len(p))
	return len(p), nil
}

// verify reports whether what was written has the signed length and hashes.
func (ch *checker) verify() error {
	if ch.n != ch.t.Length {
		what := "shorter"
		if ch.n > ch.t.Length {
			what = "longer"
		}
		return fmt.Errorf("%w: %s is %s than the signed %d bytes", ErrLength, ch.t.Path, what, ch.t.Length)
	}
	for alg, h := range ch.hashes {
		if subtle.ConstantTimeCompare(h.Sum(nil), ch.t.info.Hashes[alg]) != 1 {
			return fmt.Errorf("%w: %s: %s differs", ErrHash, ch.t.Path, alg)
		}
	}
	return nil
}

// LocalPath is where [Client.Download] puts a verified target: TargetsDir/ESCAPED-PATH.
func (c *Client) LocalPath(t *Target) string {
	return filepath.Join(c.cfg.TargetsDir, url.PathEscape(t.Path))
}

// Download streams the verified target t to [Client.LocalPath] and returns that path. The
// file is written to a temporary file in TargetsDir while its hashes are computed, at most
// one byte past the signed length is read, and it is renamed into place only when its length
// and every hash match; otherwise it is removed and the error wraps ErrLength or ErrHash. A
// file already in place that matches is not downloaded again. Network failures, 429 and 5xx
// are retried; a download that receives nothing for StallTimeout is aborted and retried.
func (c *Client) Download(ctx context.Context, t *Target) (string, error) {
	if t == nil || t.info == nil {
		return "", errors.New("updateclient: Download needs a target from Verify")
	}
	final := c.LocalPath(t)
	if c.haveVerified(final, t) {
		return final, nil
	}
	u := c.endpoint(PathTargets + remotePath(t))
	err := c.retry(ctx, func(ctx context.Context) error { return c.stream(ctx, u, final, t) })
	if err != nil {
		return "", err
	}
	return final, nil
}

// remotePath is the target's file under targets/: the consistent-snapshot name
// MODEL/VERSION/SHA256HEX.FILENAME, each segment escaped (JoinPath takes escaped paths).
func remotePath(t *Target) string {
	segs := strings.Split(t.Path, "/")
	segs[len(segs)-1] = t.Hashes["sha256"] + "." + segs[len(segs)-1]
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// haveVerified reports whether path already holds t.
func (c *Client) haveVerified(path string, t *Target) bool {
	f, err := os.Open(path) // #nosec G304 -- TargetsDir joined with the escaped target path
	if err != nil {
		return false
	}
	defer f.Close()
	ch := newChecker(t)
	if _, err := io.Copy(ch, io.LimitReader(f, t.Length+1)); err != nil {
		return false
	}
	return ch.verify() == nil
}

// errStalled cancels a download that made no progress for StallTimeout.
var errStalled = errors.New("updateclient: download stalled")

// stream makes one attempt at downloading u into final.
func (c *Client) stream(ctx context.Context, u, final string, t *Target) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(c.cfg.StallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()
	resp, err := c.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return transient(fmt.Errorf("updateclient: downloading %s: %w", t.Path, orCause(ctx, err)))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		serr := &StatusError{Op: "GET " + u, StatusCode: resp.StatusCode}
		if retryable(resp.StatusCode) {
			return transientStatus(serr, resp.Header)
		}
		return serr
	}
	if resp.ContentLength > t.Length {
		return fmt.Errorf("%w: %s: the server announces %d bytes, the signed length is %d", ErrLength, t.Path, resp.ContentLength, t.Length)
	}
	tmp, err := os.CreateTemp(c.cfg.TargetsDir, ".download-*")
	if err != nil {
		return fmt.Errorf("updateclient: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	ch := newChecker(t)
	body := &progressReader{r: resp.Body, onRead: func() { stall.Reset(c.cfg.StallTimeout) }}
	if _, err := io.Copy(io.MultiWriter(tmp, ch), io.LimitReader(body, t.Length+1)); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("updateclient: writing %s: %w", t.Path, err) // the disk, not the network
		}
		return transient(fmt.Errorf("updateclient: downloading %s: %w", t.Path, orCause(ctx, err)))
	}
	if err := ch.verify(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("updateclient: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("updateclient: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("updateclient: %w", err)
	}
	return nil
}

// orCause returns the reason ctx was cancelled (a stall), or err.
func orCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
		return cause
	}
	return err
}

// progressReader calls onRead after every read that returned data.
type progressReader struct {
	r      io.Reader
	onRead func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.onRead()
	}
	return n, err
}
