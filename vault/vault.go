// Package vault seals and opens stored resources under per-patient data keys.
//
// Each patient has one AES-256 data key, created on first use, stored only wrapped by the
// key-encryption key (see package seal) and cached unwrapped in memory. Erasing a patient's
// wrapped data key makes everything sealed under it unreadable. Every ciphertext is bound by
// its associated data to its resource type, id and version, so a ciphertext moved to another
// row does not open.
package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/seal"
)

// KeyStore is the part of the store the vault needs: wrapped data keys.
type KeyStore interface {
	DataKey(ctx context.Context, patientIndex []byte) (vitalgate.DataKey, error)
	PutDataKey(ctx context.Context, k vitalgate.DataKey) (vitalgate.DataKey, error)
	RewrapDataKeys(ctx context.Context, rewrap func(vitalgate.DataKey) ([]byte, bool, error)) (int, error)
}

// Vault seals and opens resources. It is safe for concurrent use.
type Vault struct {
	store KeyStore
	keys  *seal.Keyring
	now   func() time.Time
	rand  io.Reader

	mu      sync.Mutex
	ciphers map[string]*seal.Cipher // by hex patient index
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
	return &Vault{store: store, keys: keys, now: now, rand: rnd, ciphers: make(map[string]*seal.Cipher)}
}

// PatientIndex returns the blind index of a patient id.
func (v *Vault) PatientIndex(patientID string) []byte {
	return v.keys.BlindIndex(seal.DomainPatient, patientID)
}

// CodeIndex returns the blind index of a coding, given as "system|code".
func (v *Vault) CodeIndex(systemCode string) []byte {
	return v.keys.BlindIndex(seal.DomainCode, systemCode)
}

// IdentifierIndex returns the blind index of an identifier, given as "system|value".
func (v *Vault) IdentifierIndex(systemValue string) []byte {
	return v.keys.BlindIndex(seal.DomainIdentifier, systemValue)
}

// Tag returns a keyed MAC of data for purpose (for example an opaque paging cursor), so that
// the server can later tell that it issued data unchanged.
func (v *Vault) Tag(purpose string, data []byte) []byte {
	return v.keys.BlindIndex("tag:"+purpose, string(data))
}

// keyAAD binds a wrapped data key to the patient it belongs to.
func keyAAD(patientIndex []byte) []byte {
	return append([]byte("vitalgate data key v1|"), patientIndex...)
}

// cipher returns the patient's cipher, creating the data key when create is set. It returns
// ENOTFOUND when the patient has no key and create is false.
func (v *Vault) cipher(ctx context.Context, patientIndex []byte, create bool) (*seal.Cipher, error) {
	id := hex.EncodeToString(patientIndex)
	v.mu.Lock()
	c, ok := v.ciphers[id]
	v.mu.Unlock()
	if ok {
		return c, nil
	}
	k, err := v.store.DataKey(ctx, patientIndex)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND && create {
		_, wrapped, werr := v.keys.NewDataKey(keyAAD(patientIndex), v.rand)
		if werr != nil {
			return nil, vitalgate.Internal(werr, "new data key")
		}
		k, err = v.store.PutDataKey(ctx, vitalgate.DataKey{PatientIndex: patientIndex, Wrapped: wrapped, CreatedAt: v.now().UTC()})
	}
	if err != nil {
		return nil, err
	}
	dek, err := v.keys.UnwrapDataKey(k.Wrapped, keyAAD(patientIndex))
	if err != nil {
		return nil, vitalgate.Internal(err, "unwrap data key")
	}
	c, err = seal.NewCipher(dek, "dek-"+id[:16])
	if err != nil {
		return nil, vitalgate.Internal(err, "data key cipher")
	}
	v.mu.Lock()
	if prev, ok := v.ciphers[id]; ok {
		c = prev
	} else {
		v.ciphers[id] = c
	}
	v.mu.Unlock()
	return c, nil
}

// Seal encrypts a resource body under its patient's data key, creating the key on first use.
func (v *Vault) Seal(ctx context.Context, patientIndex []byte, typ, id string, version int, body []byte) ([]byte, error) {
	c, err := v.cipher(ctx, patientIndex, true)
	if err != nil {
		return nil, err
	}
	out, err := c.Seal(body, seal.AAD(typ, id, strconv.Itoa(version)), v.rand)
	if err != nil {
		return nil, vitalgate.Internal(err, "seal resource")
	}
	return out, nil
}

// SealValue encrypts a small value that belongs to a patient (for example the patient
// reference held by a device record), bound to a purpose string.
func (v *Vault) SealValue(ctx context.Context, patientIndex []byte, purpose string, value []byte) ([]byte, error) {
	return v.Seal(ctx, patientIndex, "value", purpose, 0, value)
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
	c, err := v.cipher(ctx, patientIndex, false)
	if err != nil {
		return nil, err
	}
	out, err := c.Open(sealed, seal.AAD(typ, id, strconv.Itoa(version)))
	if err != nil {
		return nil, vitalgate.Internal(err, "open "+typ+" "+id)
	}
	return out, nil
}

// Rotate rewraps every data key under the keyring's current key-encryption key and returns
// how many changed. Run it after adding a new key-encryption key (AddKEK).
func (v *Vault) Rotate(ctx context.Context) (int, error) {
	return v.store.RewrapDataKeys(ctx, func(k vitalgate.DataKey) ([]byte, bool, error) {
		return v.keys.RewrapDataKey(k.Wrapped, keyAAD(k.PatientIndex), v.rand)
	})
}
