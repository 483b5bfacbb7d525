package backup

import (
	"crypto/hpke"
	"io"
)

// NewSealer and NewOpener expose the chunked encryption to the tests, which rewrite a backup
// as an attacker holding only the recovery public key could.
func NewSealer(w io.Writer, pub hpke.PublicKey) (io.WriteCloser, error) { return newSealer(w, pub) }

func NewOpener(r io.Reader, priv hpke.PrivateKey) (io.Reader, error) { return newOpener(r, priv) }
