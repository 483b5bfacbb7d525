package vault

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/seal"
)

// Forget drops the cached cipher of a patient (after its data key is erased), so this
// process can no longer open what was sealed under it.
func (v *Vault) Forget(patientIndex []byte) {
	v.mu.Lock()
	delete(v.ciphers, hex.EncodeToString(patientIndex))
	v.mu.Unlock()
}

// ForgetAll drops every cached cipher (after a whole site is erased: its patients' indexes
// are gone with it), so this process reads each data key from the store again.
func (v *Vault) ForgetAll() {
	v.mu.Lock()
	clear(v.ciphers)
	v.mu.Unlock()
}

// Shredded says what ShredKEK did.
type Shredded struct {
	Rewrapped int      // data keys rewrapped under the new KEK
	NewKEK    string   // the id of the new KEK
	Destroyed []string // the KEK files deleted
}

// ShredKEK replaces the key-encryption key that wraps the data keys of site (its own, or
// the deployment's when it has none), so that a copy of a deleted wrapped data key (a dead
// row, a WAL page, a replica, a backup) can no longer be unwrapped with any key kept. Run it
// after erasing a patient's data key. It needs the key directory (FollowKeyDir). In order:
//  1. a new KEK generation is added to the key directory;
//  2. every older KEK of that keyring is retired in the store (RetireKEKs): from then on no
//     node can store a data key wrapped under one of them (PutDataKeyUnder refuses it,
//     atomically), and a node that was storing one has committed it before this returns;
//  3. every data key of the keyring is rewrapped under the new KEK (other keyrings are
//     untouched): after step 2 none can be missed;
//  4. the older KEK files are deleted here. Every other node following its key directory
//     stops using them, and deletes its copies once it holds the new KEK, within the
//     staleness bound (SetMaxAge).
//
// Copies of the old KEK files elsewhere (key backups) must be deleted by the operator: the
// error-free return lists the files deleted here.
func (v *Vault) ShredKEK(ctx context.Context, site string) (Shredded, error) {
	var out Shredded
	if v.keyDir == "" {
		return out, errors.New("vault: no key directory (FollowKeyDir) to rotate keys in")
	}
	own, err := v.ownKeys(ctx, site)
	if err != nil {
		return out, err
	}
	dir, keyring := v.keyDir, ""
	if own {
		dir, keyring = SiteKeyDir(v.keyDir, site), site
	}
	old, err := kekFileIDs(dir)
	if err != nil {
		return out, err
	}
	var kr *seal.Keyring
	if own {
		kr, err = AddSiteKEK(v.keyDir, site, v.rand)
	} else {
		kr, err = AddKEK(v.keyDir, v.rand)
	}
	if err != nil {
		return out, err
	}
	out.NewKEK = kr.CurrentKEKID()
	if len(old) > 0 {
		if err := v.store.RetireKEKs(ctx, keyring, old, v.now().UTC()); err != nil {
			return out, fmt.Errorf("vault: retire the old key-encryption keys: %w", err)
		}
	}
	v.retired.Forget(struct{}{})
	if own {
		out.Rewrapped, err = v.RotateSite(ctx, site)
	} else {
		v.keys.Store(kr)
		out.Rewrapped, err = v.Rotate(ctx)
	}
	if err != nil {
		return out, err
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
