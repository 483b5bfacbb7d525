package seal

import (
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/vitalgate/vitalgate"
)

const kekPrefix = "kek-"

// Keyring holds the key-encryption keys (KEKs) that wrap data keys, and the blind-index
// key. KEKs are numbered generations with ids "kek-1", "kek-2", ...; the highest
// generation is current and wraps new data keys, older ones only unwrap. The index key
// never rotates: rotating it would break every blind index.
//
// A Keyring is immutable apart from an internal cache and is safe for concurrent use.
// Build one with [NewKeyring] from keys held elsewhere (package vault keeps them in key
// files). It keeps no raw KEKs, and its String, GoString and Format methods print only key
// ids.
type Keyring struct {
	ids   []string            // ascending generation; the last is current
	gens  []int               // the generations of ids
	keks  map[string]*aeadKey // by id
	index *indexKeys
}

// KEK is one key-encryption key generation: Generation ≥ 1 and a [KeySize]-byte key.
type KEK struct {
	Generation int
	Key        []byte
}

// NewKeyring returns a keyring of the given KEK generations (in any order, at least one,
// no generation twice) and blind-index key. Keys must be [KeySize] bytes; NewKeyring keeps
// no reference to the caller's slices, which the caller may clear afterwards. Errors have
// code EINTERNAL and name no key material.
func NewKeyring(keks []KEK, indexKey []byte) (*Keyring, error) {
	if len(keks) == 0 {
		return nil, vitalgate.Internal(fmt.Errorf("a keyring needs at least one KEK"), "seal: new keyring")
	}
	if len(indexKey) != KeySize {
		return nil, vitalgate.Internal(fmt.Errorf("index key must be %d bytes, got %d", KeySize, len(indexKey)), "seal: new keyring")
	}
	sorted := slices.SortedFunc(slices.Values(keks), func(a, b KEK) int { return a.Generation - b.Generation })
	kr := &Keyring{keks: make(map[string]*aeadKey, len(keks))}
	for i, k := range sorted {
		if k.Generation < 1 {
			return nil, vitalgate.Internal(fmt.Errorf("KEK generation %d: generations start at 1", k.Generation), "seal: new keyring")
		}
		if i > 0 && sorted[i-1].Generation == k.Generation {
			return nil, vitalgate.Internal(fmt.Errorf("KEK generation %d given twice", k.Generation), "seal: new keyring")
		}
		id := KEKID(k.Generation)
		ak, err := newAEADKey(k.Key, wrapLabel, id)
		if err != nil {
			return nil, vitalgate.Internal(fmt.Errorf("%s: %w", id, err), "seal: new keyring")
		}
		kr.ids = append(kr.ids, id)
		kr.gens = append(kr.gens, k.Generation)
		kr.keks[id] = ak
	}
	kr.index = &indexKeys{key: slices.Clone(indexKey)}
	return kr, nil
}

// NewKey returns a fresh random [KeySize]-byte key (a KEK or an index key). rnd nil means
// crypto/rand.Reader, the only choice allowed in FIPS 140-3 mode.
func NewKey(rnd io.Reader) ([]byte, error) {
	key := make([]byte, KeySize)
	if err := readRand(rnd, key); err != nil {
		return nil, vitalgate.Internal(err, "seal: generate key")
	}
	return key, nil
}

// KEKID returns the key id of a KEK generation: "kek-<generation>".
func KEKID(generation int) string { return kekPrefix + strconv.Itoa(generation) }

// CurrentKEKID returns the id of the KEK that wraps new data keys.
func (kr *Keyring) CurrentKEKID() string { return kr.ids[len(kr.ids)-1] }

// CurrentGeneration returns the generation of the current KEK.
func (kr *Keyring) CurrentGeneration() int { return kr.gens[len(kr.gens)-1] }

// KEKIDs returns the ids of all KEKs, oldest generation first.
func (kr *Keyring) KEKIDs() []string { return slices.Clone(kr.ids) }

// HasKEK reports whether the keyring holds the KEK with id.
func (kr *Keyring) HasKEK(id string) bool { _, ok := kr.keks[id]; return ok }

// String describes the keyring by its current KEK id and KEK count, for example
// "seal.Keyring{current: kek-2, keks: 2}".
func (kr Keyring) String() string {
	if len(kr.ids) == 0 {
		return "seal.Keyring{}"
	}
	return fmt.Sprintf("seal.Keyring{current: %s, keks: %d}", kr.ids[len(kr.ids)-1], len(kr.ids))
}

// GoString is String: a Keyring never prints key material, even with %#v.
func (kr Keyring) GoString() string { return kr.String() }

// Format writes String for every verb (%v, %+v, %#v, %x, %d, ...), so no fmt verb can reach
// key material.
func (kr Keyring) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, kr.String()) }
