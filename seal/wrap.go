package seal

import (
	"fmt"
	"io"

	"github.com/vitalgate/vitalgate"
)

// NewDataKey returns a fresh 32-byte data key and the same key wrapped under the current
// KEK, bound to aad. Callers bind aad to the patient (for example the patient's blind
// index), and must pass the same aad to [Keyring.UnwrapDataKey]. rnd supplies the key and
// the nonce; nil means crypto/rand.Reader, the only choice allowed in FIPS 140-3 mode.
func (kr *Keyring) NewDataKey(aad []byte, rnd io.Reader) (dek, wrapped []byte, err error) {
	dek = make([]byte, KeySize)
	if err := readRand(rnd, dek); err != nil {
		return nil, nil, vitalgate.Internal(err, "seal: new data key")
	}
	wrapped, err = kr.keks[kr.CurrentKEKID()].seal(dek, aad, rnd)
	if err != nil {
		clear(dek)
		return nil, nil, vitalgate.Internal(err, "seal: new data key")
	}
	return dek, wrapped, nil
}

// UnwrapDataKey returns the data key in wrapped, which must have been wrapped with aad. It
// fails with an error wrapping [ErrUnknownKey] if the keyring lacks the KEK named in
// wrapped, and with one wrapping [ErrOpen] if wrapped does not authenticate.
func (kr *Keyring) UnwrapDataKey(wrapped, aad []byte) ([]byte, error) {
	dek, _, err := kr.unwrap(wrapped, aad)
	if err != nil {
		return nil, vitalgate.Internal(err, "seal: unwrap data key")
	}
	return dek, nil
}

// RewrapDataKey re-encrypts the data key in wrapped under the current KEK, keeping aad.
// It always unwraps first, so a corrupt or mis-bound key fails here rather than later. If
// wrapped already uses the current KEK it is returned unchanged with changed == false.
func (kr *Keyring) RewrapDataKey(wrapped, aad []byte, rnd io.Reader) (newWrapped []byte, changed bool, err error) {
	dek, id, err := kr.unwrap(wrapped, aad)
	if err != nil {
		return nil, false, vitalgate.Internal(err, "seal: rewrap data key")
	}
	defer clear(dek)
	cur := kr.CurrentKEKID()
	if id == cur {
		return wrapped, false, nil
	}
	newWrapped, err = kr.keks[cur].seal(dek, aad, rnd)
	if err != nil {
		return nil, false, vitalgate.Internal(err, "seal: rewrap data key")
	}
	return newWrapped, true, nil
}

func (kr *Keyring) unwrap(wrapped, aad []byte) (dek []byte, kekID string, err error) {
	id, _, err := parseHeader(wrapped)
	if err != nil {
		return nil, "", err
	}
	k, ok := kr.keks[id]
	if !ok {
		return nil, "", fmt.Errorf("%w %q", ErrUnknownKey, id)
	}
	dek, err = k.open(wrapped, aad)
	if err != nil {
		return nil, "", err
	}
	if len(dek) != KeySize {
		clear(dek)
		return nil, "", fmt.Errorf("%w: wrapped key has wrong length", ErrOpen)
	}
	return dek, id, nil
}
