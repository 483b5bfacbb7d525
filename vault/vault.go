// Package vault seals and opens stored resources under per-patient data keys.
//
// Each patient has one AES-256 data key, created on first use, stored only wrapped by the
// key-encryption key (see package seal) and cached unwrapped in memory. Erasing a patient's
// wrapped data key makes everything sealed under it unreadable. Every ciphertext is bound by
// its associated data to its resource type, id and version, so a ciphertext moved to another
// row does not open.
package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fresh"
	"github.com/vitalgate/vitalgate/seal"
)

// KeyStore is the part of the store the vault needs: wrapped data keys.
type KeyStore interface {
	DataKey(ctx context.Context, patientIndex []byte) (vitalgate.DataKey, error)
	PutDataKey(ctx context.Context, k vitalgate.DataKey) (vitalgate.DataKey, error)
	RewrapDataKeys(ctx context.Context, rewrap func(vitalgate.DataKey) ([]byte, bool, error)) (int, error)
	// Site returns a site (whether it has its own KEK). ENOTFOUND.
	Site(ctx context.Context, id string) (vitalgate.Site, error)
	// Sites returns every site.
	Sites(ctx context.Context) ([]vitalgate.Site, error)
	// PutDataKeyUnder, RetireKEKs and RetiredKEKs fence the KEKs an erasure destroys.
	vitalgate.KEKRetirementStore
}

// Vault seals and opens resources. It is safe for concurrent use.
type Vault struct {
	store KeyStore
	keys  atomic.Pointer[seal.Keyring]
	now   func() time.Time
	rand  io.Reader

	// Following the key directory (see FollowKeyDir).
	keyDir      string
	interval    time.Duration
	reloadMu    sync.Mutex
	lastCheck   time.Time // of the directory before a new data key
	lastUnknown time.Time // of a reload for an unknown KEK id

	// The staleness bound of cached ciphers and of the retired-KEK list (SetMaxAge), in
	// nanoseconds.
	maxAge  atomic.Int64
	retired *fresh.Cache[struct{}, retiredSet]
	purgeMu sync.Mutex // one purge of retired key files at a time

	mu      sync.Mutex
	ciphers map[string]cachedCipher // by hex patient index
	own     map[string]bool         // by site: whether it has its own KEK
	sites   map[string]siteRing     // the own keyrings of sites, by site
}

// New returns a Vault over the given key store and keyring. now and rnd may be nil for the
// real clock and crypto/rand.
func New(store KeyStore, keys *seal.Keyring, now func() time.Time, rnd io.Reader) *Vault {
	if now == nil {
		now = time.Now
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	v := &Vault{store: store, now: now, rand: rnd, ciphers: make(map[string]cachedCipher),
		own: make(map[string]bool), sites: make(map[string]siteRing)}
	v.keys.Store(keys)
	v.SetMaxAge(fresh.DefaultMaxAge)
	return v
}

// cachedCipher is a patient's cipher and the stored wrapped key it was confirmed against.
type cachedCipher struct {
	c       *seal.Cipher
	wrapped []byte
	checked time.Time // when the read of the stored key that confirmed it began
}

// SetMaxAge sets the staleness bound: a cached cipher, and the list of retired KEKs, are
// reused for less than d after the store read that confirmed them (0: never reused, every
// use reads the store). The default is fresh.DefaultMaxAge, the bound of every other
// cross-node fact. Call it before use.
func (v *Vault) SetMaxAge(d time.Duration) {
	d = max(d, 0)
	v.maxAge.Store(int64(d))
	v.retired = fresh.New[struct{}, retiredSet](d, v.now)
}

// MaxAge returns the staleness bound (SetMaxAge).
func (v *Vault) MaxAge() time.Duration { return time.Duration(v.maxAge.Load()) }

// DefaultReloadInterval is how often, at most, a vault following its key directory looks
// at it (see FollowKeyDir).
const DefaultReloadInterval = time.Second

// FollowKeyDir makes v follow the key directory its keyring was loaded from (the data
// directory's keys/), so that `vitalgate keys rotate` takes effect in a running server
// without a restart:
//   - before it makes a new data key, v looks at dir (at most once per interval, 0 meaning
//     DefaultReloadInterval) and reloads the keyring when its KEK files changed, so new data
//     keys are wrapped under the newest KEK;
//   - when a data key is wrapped under a KEK v lacks (rotated on another process or node),
//     v reloads at once (then at most once per interval) and retries.
//
// A reload that fails, or whose index key differs from the one in use (every blind index
// would change), is refused and the keyring in use stays. Call it once, before use.
func (v *Vault) FollowKeyDir(dir string, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	v.keyDir, v.interval = dir, interval
}

// Keyring returns the keyring in use.
func (v *Vault) Keyring() *seal.Keyring { return v.keys.Load() }

// kr returns the keyring in use.
func (v *Vault) kr() *seal.Keyring { return v.keys.Load() }

// reload loads the key directory if it is followed, the last such attempt (*last) is older
// than the interval, and its KEKs differ from those in use. It returns the keyring in use
// afterwards.
func (v *Vault) reload(last *time.Time) (*seal.Keyring, error) {
	if v.keyDir == "" {
		return v.kr(), nil
	}
	v.reloadMu.Lock()
	defer v.reloadMu.Unlock()
	cur := v.kr()
	now := v.now()
	if !last.IsZero() && now.Sub(*last) < v.interval && now.After(*last) {
		return cur, nil
	}
	*last = now
	ids, err := kekFileIDs(v.keyDir)
	if err != nil {
		return cur, err
	}
	if slices.Equal(ids, cur.KEKIDs()) {
		return cur, nil
	}
	next, err := LoadKeyring(v.keyDir)
	if err != nil {
		return cur, err
	}
	const probe = "vitalgate index key probe"
	if !bytes.Equal(next.BlindIndex(seal.DomainPatient, probe), cur.BlindIndex(seal.DomainPatient, probe)) {
		return cur, fmt.Errorf("vault: %s holds another index key than the one in use: refusing to reload (every blind index would change)", v.keyDir)
	}
	v.keys.Store(next)
	return next, nil
}

// missingKEK is the error for a data key wrapped under a KEK this node does not have.
func (v *Vault) missingKEK(wrapped []byte, cause error) error {
	id, _ := seal.SealedKeyID(wrapped)
	where, then := "this node's data directory keys/", "restart the server to load it"
	if v.keyDir != "" {
		where, then = v.keyDir, "it is loaded without a restart"
	}
	return vitalgate.Unavailable(
		fmt.Errorf("data key wrapped under key-encryption key %q, which this node lacks: copy %s.key from the data directory where `vitalgate keys rotate` ran into %s (mode 0600); %s: %w", id, id, where, then, cause),
		fmt.Sprintf("this server lacks key-encryption key %q; the operator must copy it to this node's data directory (see SECURITY.md, key rotation)", id))
}

// PatientIndex returns the blind index of a patient id of the default site
// (SitePatientIndex of vitalgate.DefaultSite).
func (v *Vault) PatientIndex(patientID string) []byte {
	return v.SitePatientIndex(vitalgate.DefaultSite, patientID)
}

// SitePatientIndex returns the blind index of a patient id within a site. The same id in two
// sites has two indexes (and so two data keys, two histories): a patient is always a
// patient of one site. The default site's index is the one written before sites existed, so
// that existing data keeps its indexes; another site's is keyed over the site id and the
// patient id, separated by a byte (NUL) that neither may hold.
func (v *Vault) SitePatientIndex(site, patientID string) []byte {
	if site == vitalgate.DefaultSite {
		return v.kr().BlindIndex(seal.DomainPatient, patientID)
	}
	return v.kr().BlindIndex(seal.DomainPatient, "site\x00"+site+"\x00"+patientID)
}

// CodeIndex returns the blind index of a coding, given as "system|code".
func (v *Vault) CodeIndex(systemCode string) []byte {
	return v.kr().BlindIndex(seal.DomainCode, systemCode)
}

// IdentifierIndex returns the blind index of an identifier, given as "system|value".
func (v *Vault) IdentifierIndex(systemValue string) []byte {
	return v.kr().BlindIndex(seal.DomainIdentifier, systemValue)
}

// Tag returns a keyed MAC of data for purpose (for example an opaque paging cursor), so that
// the server can later tell that it issued data unchanged.
func (v *Vault) Tag(purpose string, data []byte) []byte {
	return v.kr().BlindIndex("tag:"+purpose, string(data))
}

// keyAAD binds a wrapped data key to the patient it belongs to.
func keyAAD(patientIndex []byte) []byte {
	return append([]byte("vitalgate data key v1|"), patientIndex...)
}

// cipher returns the patient's cipher, creating the data key when create is set. It returns
// ENOTFOUND when the patient has no key and create is false.
//
// A cached cipher is reused for less than the staleness bound (SetMaxAge) after the read of
// the stored data key that confirmed it; then the key is read again: an erased key (another
// node's erasure) drops the cipher, a changed one (a rotation) is unwrapped anew, and a key
// wrapped under a retired KEK is refused. So no node serves a patient from a data key erased,
// or a KEK retired, longer ago than the bound.
func (v *Vault) cipher(ctx context.Context, site string, patientIndex []byte, create bool) (*seal.Cipher, error) {
	id := hex.EncodeToString(patientIndex)
	start := v.now()
	maxAge := time.Duration(v.maxAge.Load())
	v.mu.Lock()
	e, ok := v.ciphers[id]
	v.mu.Unlock()
	if ok && maxAge > 0 && !start.Before(e.checked) && start.Sub(e.checked) < maxAge {
		return e.c, nil
	}
	k, err := v.store.DataKey(ctx, patientIndex)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		v.drop(id)
		ok = false
		if create {
			k, err = v.create(ctx, site, patientIndex)
		}
	}
	if err != nil {
		return nil, err
	}
	if ok && bytes.Equal(e.wrapped, k.Wrapped) {
		if err := v.refuseRetired(ctx, k); err != nil {
			v.drop(id)
			return nil, err
		}
		return v.keep(id, k.Wrapped, start, e.c, nil)
	}
	dek, err := v.unwrap(ctx, k)
	if err != nil {
		v.drop(id)
		return nil, err
	}
	return v.keep(id, k.Wrapped, start, nil, dek)
}

// create makes a new data key for a patient of site, wrapped under the current KEK of the
// site's keyring, and stores it unless that KEK is retired (PutDataKeyUnder refuses it then,
// atomically): it then reloads the keyring at once and tries once more, so that a key is
// never stored under a KEK that an erasure is destroying.
func (v *Vault) create(ctx context.Context, site string, patientIndex []byte) (vitalgate.DataKey, error) {
	for attempt := 0; ; attempt++ {
		kr, keyring, err := v.wrapRing(ctx, site, attempt > 0)
		if err != nil {
			return vitalgate.DataKey{}, err
		}
		kek := kr.CurrentKEKID()
		retired, err := v.isRetired(ctx, keyring, kek)
		if err != nil {
			return vitalgate.DataKey{}, err
		}
		if !retired {
			_, wrapped, werr := kr.NewDataKey(keyAAD(patientIndex), v.rand)
			if werr != nil {
				return vitalgate.DataKey{}, vitalgate.Internal(werr, "new data key")
			}
			k, err := v.store.PutDataKeyUnder(ctx, vitalgate.DataKey{Site: site, PatientIndex: patientIndex, Wrapped: wrapped, CreatedAt: v.now().UTC()}, keyring, kek)
			if vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
				return k, err
			}
			v.retired.Forget(struct{}{}) // retired meanwhile: read the list afresh
		}
		if attempt > 0 {
			return vitalgate.DataKey{}, v.retiredKEK(keyring, kek)
		}
	}
}

// wrapRing returns the keyring that wraps new data keys of site, and its name for
// PutDataKeyUnder ("" for the deployment's, else the site). force reloads it from the key
// directory at once.
func (v *Vault) wrapRing(ctx context.Context, site string, force bool) (*seal.Keyring, string, error) {
	own, err := v.ownKeys(ctx, site)
	if err != nil {
		return nil, "", err
	}
	if own {
		var kr *seal.Keyring
		if force {
			kr, err = v.reloadSite(site)
		} else {
			kr, err = v.ring(ctx, site, true)
		}
		return kr, site, err
	}
	last := &v.lastCheck
	if force {
		last = new(time.Time) // never looked: look now
	}
	kr, _ := v.reload(last) // a failed look leaves the keyring in use: the store refuses a retired KEK
	return kr, "", nil
}

// unwrap unwraps a stored data key, refusing one wrapped under a retired KEK.
func (v *Vault) unwrap(ctx context.Context, k vitalgate.DataKey) ([]byte, error) {
	if err := v.refuseRetired(ctx, k); err != nil {
		return nil, err
	}
	if own, oerr := v.ownKeys(ctx, k.Site); oerr != nil {
		return nil, oerr
	} else if own {
		return v.openSiteKey(ctx, k)
	}
	dek, err := v.kr().UnwrapDataKey(k.Wrapped, keyAAD(k.PatientIndex))
	if errors.Is(err, seal.ErrUnknownKey) {
		kr, rerr := v.reload(&v.lastUnknown)
		if dek, err = kr.UnwrapDataKey(k.Wrapped, keyAAD(k.PatientIndex)); errors.Is(err, seal.ErrUnknownKey) {
			return nil, v.missingKEK(k.Wrapped, errors.Join(err, rerr))
		}
	}
	if err != nil {
		return nil, vitalgate.Internal(err, "unwrap data key")
	}
	return dek, nil
}

// openSiteKey unwraps a data key of a site with its own KEK, reloading the site's keyring
// once when the key is wrapped under a generation it lacks (a rotation by another process).
func (v *Vault) openSiteKey(ctx context.Context, k vitalgate.DataKey) ([]byte, error) {
	kr, err := v.ring(ctx, k.Site, false)
	if err != nil {
		return nil, err
	}
	dek, err := kr.UnwrapDataKey(k.Wrapped, keyAAD(k.PatientIndex))
	if errors.Is(err, seal.ErrUnknownKey) {
		if kr, err = v.reloadSite(k.Site); err != nil {
			return nil, err
		}
		dek, err = kr.UnwrapDataKey(k.Wrapped, keyAAD(k.PatientIndex))
	}
	if err != nil {
		return nil, vitalgate.Internal(err, "unwrap data key of site "+k.Site)
	}
	return dek, nil
}

// keep caches the cipher of the patient with hex index id, confirmed at checked to belong to
// the stored wrapped key: c when given, else a new one over dek. A cached cipher of the same
// wrapped key is kept (concurrent fillers share one).
func (v *Vault) keep(id string, wrapped []byte, checked time.Time, c *seal.Cipher, dek []byte) (*seal.Cipher, error) {
	if c == nil {
		var err error
		if c, err = seal.NewCipher(dek, "dek-"+id[:16]); err != nil {
			return nil, vitalgate.Internal(err, "data key cipher")
		}
	}
	v.mu.Lock()
	if prev, ok := v.ciphers[id]; ok && bytes.Equal(prev.wrapped, wrapped) {
		c = prev.c
		checked = later(prev.checked, checked)
	}
	v.ciphers[id] = cachedCipher{c: c, wrapped: wrapped, checked: checked}
	v.mu.Unlock()
	return c, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// drop forgets the cached cipher of the patient with hex index id.
func (v *Vault) drop(id string) {
	v.mu.Lock()
	delete(v.ciphers, id)
	v.mu.Unlock()
}

// Seal is SealIn for a patient of the default site.
func (v *Vault) Seal(ctx context.Context, patientIndex []byte, typ, id string, version int, body []byte) ([]byte, error) {
	return v.SealIn(ctx, vitalgate.DefaultSite, patientIndex, typ, id, version, body)
}

// SealIn encrypts a resource body under its patient's data key, creating the key (of the
// patient's site) on first use.
func (v *Vault) SealIn(ctx context.Context, site string, patientIndex []byte, typ, id string, version int, body []byte) ([]byte, error) {
	c, err := v.cipher(ctx, site, patientIndex, true)
	if err != nil {
		return nil, err
	}
	out, err := c.Seal(body, seal.AAD(typ, id, strconv.Itoa(version)), v.rand)
	if err != nil {
		return nil, vitalgate.Internal(err, "seal resource")
	}
	return out, nil
}

// SealValue encrypts a small value that belongs to a patient of site (for example the
// patient reference held by a device record), bound to a purpose string.
func (v *Vault) SealValue(ctx context.Context, site string, patientIndex []byte, purpose string, value []byte) ([]byte, error) {
	return v.SealIn(ctx, site, patientIndex, "value", purpose, 0, value)
}

// OpenValue decrypts what SealValue sealed.
func (v *Vault) OpenValue(ctx context.Context, patientIndex []byte, purpose string, sealed []byte) ([]byte, error) {
	return v.open(ctx, patientIndex, "value", purpose, 0, sealed)
}

// Open decrypts a stored resource's body.
func (v *Vault) Open(ctx context.Context, r vitalgate.SealedResource) ([]byte, error) {
	return v.open(ctx, r.PatientIndex, r.Type, r.ID, r.Version, r.Body)
}

func (v *Vault) open(ctx context.Context, patientIndex []byte, typ, id string, version int, sealed []byte) ([]byte, error) {
	c, err := v.cipher(ctx, "", patientIndex, false)
	if err != nil {
		return nil, err
	}
	out, err := c.Open(sealed, seal.AAD(typ, id, strconv.Itoa(version)))
	if err != nil {
		return nil, vitalgate.Internal(err, "open "+typ+" "+id)
	}
	return out, nil
}

// Rotate rewraps every data key wrapped by the deployment's key-encryption key under its
// current generation and returns how many changed; the data keys of sites with a KEK of
// their own are not touched (RotateSite). Run it after adding a new key-encryption key
// (AddKEK).
func (v *Vault) Rotate(ctx context.Context) (int, error) {
	own, err := v.siteOwnKeys(ctx)
	if err != nil {
		return 0, err
	}
	return v.store.RewrapDataKeys(ctx, func(k vitalgate.DataKey) ([]byte, bool, error) {
		if own[k.Site] {
			return nil, false, nil
		}
		return v.kr().RewrapDataKey(k.Wrapped, keyAAD(k.PatientIndex), v.rand)
	})
}
