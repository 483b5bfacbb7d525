package seal

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"io"
	"sync"
)

// Blind-index domains. Each gets its own subkey, so equal values in different domains
// have unrelated indexes.
const (
	DomainPatient    = "patient"
	DomainCode       = "code"
	DomainIdentifier = "identifier"
	DomainDevice     = "device"
)

// BlindIndexSize is the length in bytes of a blind index: the full HMAC-SHA-256 output.
// Truncating to 16 bytes would also be safe against collisions at any realistic table
// size, but the full output needs no argument and costs 16 bytes a row.
const BlindIndexSize = sha256.Size

const blindIndexInfo = "vitalgate blind index v1 "

// indexKeys derives and caches the per-domain blind-index subkeys.
type indexKeys struct {
	key     []byte
	domains sync.Map // domain → *indexer
}

// indexer computes the blind indexes of one domain, pooling keyed HMAC states.
type indexer struct {
	pool sync.Pool // of hash.Hash, HMAC-SHA-256 under the domain subkey
}

func (ix *indexKeys) indexer(domain string) *indexer {
	if v, ok := ix.domains.Load(domain); ok {
		return v.(*indexer)
	}
	subkey, err := hkdf.Key(sha256.New, ix.key, nil, blindIndexInfo+domain, KeySize)
	if err != nil {
		panic("seal: deriving blind-index subkey: " + err.Error()) // fixed, valid lengths
	}
	in := &indexer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, subkey) }}}
	v, _ := ix.domains.LoadOrStore(domain, in)
	return v.(*indexer)
}

func (in *indexer) index(value string) []byte {
	h := in.pool.Get().(hash.Hash)
	h.Reset()
	_, _ = io.WriteString(h, value) // writes to a hash.Hash never fail
	sum := h.Sum(make([]byte, 0, BlindIndexSize))
	in.pool.Put(h)
	return sum
}

// BlindIndex returns the blind index of value in domain (one of the Domain constants):
// HMAC-SHA-256 of value under a subkey derived from the index key with HKDF-SHA-256, info
// "vitalgate blind index v1 " + domain. It is deterministic, so equal values can be found
// by their index, and reveals nothing about value without the index key. Callers normalize
// value first (case, whitespace, identifier system) as the search requires. Subkeys are
// cached; BlindIndex is safe for concurrent use.
func (kr *Keyring) BlindIndex(domain, value string) []byte {
	return kr.index.indexer(domain).index(value)
}

// BlindIndexer returns a function computing [Keyring.BlindIndex] in domain, with the subkey
// lookup done once.
func (kr *Keyring) BlindIndexer(domain string) func(value string) []byte {
	return kr.index.indexer(domain).index
}
