package node

import (
	"crypto/fips140"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vitalgate/vitalgate/auth"
)

// CryptoFile is the data dir's record of its cryptographic mode, written by Init.
const CryptoFile = "crypto.json"

// FIPS 140-3 modes of a process, as GODEBUG=fips140 sets them at start.
const (
	FIPSOff  = "off"  // the default: Go's FIPS module runs in its non-FIPS mode
	FIPSOn   = "on"   // FIPS 140-3 mode, non-approved algorithms still allowed
	FIPSOnly = "only" // FIPS 140-3 mode, non-approved algorithms refused
)

// ProcessFIPSMode returns this process's FIPS 140-3 mode: FIPSOff, FIPSOn or FIPSOnly
// (crypto/fips140.Enabled and Enforced). GODEBUG is read once at process start, so the
// mode never changes while the process runs.
func ProcessFIPSMode() string {
	switch {
	case !fips140.Enabled():
		return FIPSOff
	case fips140.Enforced():
		return FIPSOnly
	}
	return FIPSOn
}

// CryptoRecord is the contents of crypto.json: how the data dir's secrets are hashed and
// which FIPS 140-3 mode its processes must run in. A data dir without the file (one made
// before the record existed) is a standard one.
type CryptoRecord struct {
	// FIPS is true for a data dir made with init --fips.
	FIPS bool `json:"fips"`
	// SecretHash is the algorithm of new secret hashes: auth.HashArgon2id or
	// auth.HashPBKDF2SHA256 (FIPS). Every stored hash also names its own algorithm.
	SecretHash string `json:"secret_hash"`
	// GODEBUG is the setting every process on a FIPS data dir must run with.
	GODEBUG string `json:"godebug,omitempty"`
}

// NewCryptoRecord returns the record of a new data dir, FIPS or standard.
func NewCryptoRecord(fips bool) CryptoRecord {
	if fips {
		return CryptoRecord{FIPS: true, SecretHash: auth.HashPBKDF2SHA256, GODEBUG: "fips140=" + FIPSOnly}
	}
	return CryptoRecord{SecretHash: auth.HashArgon2id}
}

// HashParams returns the parameters of the data dir's new secret hashes.
func (r CryptoRecord) HashParams() auth.HashParams {
	if r.FIPS {
		return auth.FIPSHashParams
	}
	return auth.DefaultHashParams
}

// Mode describes the data dir's mode together with the process's, for /readyz, logs and
// reports: for example "fips140=only; secrets pbkdf2-sha256 (FIPS data dir)".
func (r CryptoRecord) Mode(process string) string {
	kind := "standard data dir"
	if r.FIPS {
		kind = "FIPS data dir"
	}
	return fmt.Sprintf("fips140=%s; secrets %s (%s)", process, r.SecretHash, kind)
}

// Check reports whether a process in FIPS mode process (ProcessFIPSMode) may work on a data
// dir with this record. A FIPS data dir needs GODEBUG=fips140=only; a standard data dir
// cannot run with fips140=only (argon2id is refused there, so no stored secret could be
// verified). A standard data dir under fips140=on is allowed (non-approved algorithms stay
// available in that mode) and Warning says why that is not FIPS operation.
func (r CryptoRecord) Check(dir, process string) error {
	switch {
	case r.FIPS && process != FIPSOnly:
		return fmt.Errorf("data dir %s was made with `vitalgate init --fips`: its secrets are hashed with PBKDF2-HMAC-SHA-256 "+
			"and it must be used in FIPS 140-3 mode; run vitalgate with the environment variable GODEBUG=fips140=only "+
			"(this process runs with fips140=%s)", dir, process)
	case !r.FIPS && process == FIPSOnly:
		return fmt.Errorf("data dir %s is a standard data dir (secrets hashed with %s, which FIPS 140-3 mode does not allow), "+
			"but this process runs with GODEBUG=fips140=only; run vitalgate without fips140=only, "+
			"or create a FIPS data dir with `vitalgate init --fips` and use that", dir, r.SecretHash)
	}
	return nil
}

// Warning returns a warning for an allowed but not FIPS-conformant combination (a standard
// data dir under fips140=on), or "".
func (r CryptoRecord) Warning(process string) string {
	if !r.FIPS && process == FIPSOn {
		return "FIPS 140-3 mode is on (GODEBUG=fips140=on) but this is a standard data dir whose secrets are hashed with " +
			r.SecretHash + ", which is not FIPS approved; for FIPS operation create a data dir with `vitalgate init --fips` " +
			"and run with GODEBUG=fips140=only"
	}
	return ""
}

// validate checks a record read from a file.
func (r CryptoRecord) validate() error {
	want := NewCryptoRecord(r.FIPS)
	if r != want {
		return fmt.Errorf("%s: unexpected contents (want fips %v with secret_hash %q and godebug %q)", CryptoFile, r.FIPS, want.SecretHash, want.GODEBUG)
	}
	return nil
}

// ReadCryptoRecord reads the data dir's crypto.json; without one the data dir is a
// standard one.
func ReadCryptoRecord(dir string) (CryptoRecord, error) {
	data, err := os.ReadFile(filepath.Join(dir, CryptoFile)) // #nosec G304 -- data dir path
	if errors.Is(err, fs.ErrNotExist) {
		return NewCryptoRecord(false), nil
	}
	if err != nil {
		return CryptoRecord{}, fmt.Errorf("read %s: %w", CryptoFile, err)
	}
	var r CryptoRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return CryptoRecord{}, fmt.Errorf("%s: %w", CryptoFile, err)
	}
	if err := r.validate(); err != nil {
		return CryptoRecord{}, err
	}
	return r, nil
}

// writeCryptoRecord writes crypto.json into a new data dir.
func writeCryptoRecord(dir string, r CryptoRecord) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, CryptoFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", CryptoFile, err)
	}
	return nil
}
