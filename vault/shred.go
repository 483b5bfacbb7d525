package vault

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"

	"github.com/vitalgate/vitalgate"
)

// Forget drops the cached cipher of a patient (after its data key is erased), so this
// process can no longer open what was sealed under it.
func (v *Vault) Forget(patientIndex []byte) {
	v.mu.Lock()
	delete(v.ciphers, hex.EncodeToString(patientIndex))
	v.mu.Unlock()
}

// Shredded says what ShredKEK did.
type Shredded struct {
	Rewrapped int      // data keys rewrapped under the new KEK
	NewKEK    string   // the id of the new KEK
	Destroyed []string // the KEK files deleted
}

// ShredKEK replaces the key-encryption key that wraps the data keys of site (its own, or
// the deployment's when it has none): it adds a new generation, rewraps every data key
// wrapped by that keyring under it (other sites' own keys are untouched), then deletes
// every older KEK file of that keyring, so that a copy of a deleted wrapped data key (a dead
// row, a WAL page, a replica, a backup) can no longer be unwrapped with any key kept. Run it
// after erasing a patient's data key. It needs the key directory (FollowKeyDir).
//
// Copies of the old KEK files elsewhere (other nodes' data directories, key backups) must be
// deleted by the operator: the error-free return lists the files deleted here.
func (v *Vault) ShredKEK(ctx context.Context, site string) (Shredded, error) {
	var out Shredded
	if v.keyDir == "" {
		return out, errors.New("vault: no key directory (FollowKeyDir) to rotate keys in")
	}
	own, err := v.ownKeys(ctx, site)
	if err != nil {
		return out, err
	}
	dir := v.keyDir
	if own {
		dir = SiteKeyDir(v.keyDir, site)
	}
	old, err := kekFileIDs(dir)
	if err != nil {
		return out, err
	}
	if own {
		kr, err := AddSiteKEK(v.keyDir, site, v.rand)
		if err != nil {
			return out, err
		}
		out.NewKEK = kr.CurrentKEKID()
		if out.Rewrapped, err = v.RotateSite(ctx, site); err != nil {
			return out, err
		}
	} else {
		kr, err := AddKEK(v.keyDir, v.rand)
		if err != nil {
			return out, err
		}
		v.keys.Store(kr)
		out.NewKEK = kr.CurrentKEKID()
		if out.Rewrapped, err = v.Rotate(ctx); err != nil {
			return out, err
		}
	}
	for _, id := range old {
		p := filepath.Join(dir, id+keySuffix)
		if err := os.Remove(p); err != nil {
			return out, vitalgate.Internal(err, "vault: destroy old key-encryption key "+id)
		}
		out.Destroyed = append(out.Destroyed, p)
	}
	if err := syncDir(dir); err != nil {
		return out, vitalgate.Internal(err, "vault: destroy old key-encryption keys")
	}
	if own {
		_, err = v.reloadSite(site)
	} else {
		kr, lerr := LoadKeyring(v.keyDir)
		if lerr == nil {
			v.keys.Store(kr)
		}
		err = lerr
	}
	return out, err
}
