package vault

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/seal"
)

// retiredSet holds the retired KEKs (ids only) by keyring ("" for the deployment's) and id.
type retiredSet map[[2]string]bool

// retiredKEKs returns the retired KEKs, read from the store at most once per staleness bound
// (SetMaxAge). Each read also purges them from this node (purge).
func (v *Vault) retiredKEKs(ctx context.Context) (retiredSet, error) {
	return v.retired.Get(ctx, struct{}{}, func(ctx context.Context) (retiredSet, error) {
		rs, err := v.store.RetiredKEKs(ctx)
		if err != nil {
			return nil, err
		}
		set := make(retiredSet, len(rs))
		for _, r := range rs {
			set[[2]string{r.Keyring, r.KEK}] = true
		}
		v.purge(set)
		return set, nil
	})
}

// isRetired reports whether KEK kek of keyring is retired.
func (v *Vault) isRetired(ctx context.Context, keyring, kek string) (bool, error) {
	set, err := v.retiredKEKs(ctx)
	return set[[2]string{keyring, kek}], err
}

// keyringOf returns the name of the keyring that wraps k: its site when the site has its own
// KEK, "" for the deployment's.
func (v *Vault) keyringOf(ctx context.Context, site string) (string, error) {
	own, err := v.ownKeys(ctx, site)
	if err != nil || !own {
		return "", err
	}
	return site, nil
}

// refuseRetired returns an error when k is wrapped under a retired KEK (a copy of an erased
// key put back from a backup, or a key this node has not seen rewrapped yet).
func (v *Vault) refuseRetired(ctx context.Context, k vitalgate.DataKey) error {
	keyring, err := v.keyringOf(ctx, k.Site)
	if err != nil {
		return err
	}
	kek, err := seal.SealedKeyID(k.Wrapped)
	if err != nil {
		return err
	}
	retired, err := v.isRetired(ctx, keyring, kek)
	if err != nil {
		return err
	}
	if retired {
		return vitalgate.Internal(fmt.Errorf("vault: a stored data key is wrapped under key-encryption key %s of keyring %q, which an erasure retired: it was put back from a copy, or the erasure's rewrap did not finish (run the approval again)", kek, keyring), "data key under a retired key-encryption key")
	}
	return nil
}

// retiredKEK is the error for a node whose newest KEK of keyring is retired: it lacks the one
// that replaced it.
func (v *Vault) retiredKEK(keyring, kek string) error {
	where := "keys/"
	if keyring != "" {
		where = filepath.Join("keys", sitesDir, keyring) + "/"
	}
	return vitalgate.Unavailable(
		fmt.Errorf("vault: key-encryption key %s was retired by an erasure and this node holds no newer one: copy the newest kek-N.key of %s from the node where the erasure ran into this node's %s (mode 0600); it is loaded without a restart", kek, where, where),
		fmt.Sprintf("this server's key-encryption key %s was retired after an erasure; the operator must copy the new one to this node (see README, Erasing a patient)", kek))
}

// purge removes retired KEKs from this node: each retired KEK file in the key directory it
// follows is deleted when a newer generation of the same keyring is there (never the newest:
// a store that names the current KEK retired cannot make this node destroy its only key), and
// the keyrings in memory are reloaded without them. Failures leave the files in place; the
// retired KEKs are refused all the same (refuseRetired, and the store's PutDataKeyUnder).
func (v *Vault) purge(set retiredSet) {
	if v.keyDir == "" || len(set) == 0 {
		return
	}
	v.purgeMu.Lock()
	defer v.purgeMu.Unlock()
	byRing := map[string][]string{}
	for k := range set {
		byRing[k[0]] = append(byRing[k[0]], k[1])
	}
	for keyring, ids := range byRing {
		dir := v.keyDir
		if keyring != "" {
			if vitalgate.CheckSiteID(keyring) != nil {
				continue
			}
			dir = SiteKeyDir(v.keyDir, keyring)
		}
		if removeRetired(dir, ids, set, keyring) {
			_ = syncDir(dir)
		}
		if keyring == "" {
			if anyHeld(v.kr(), ids) {
				_, _ = v.reload(new(time.Time))
			}
			continue
		}
		v.mu.Lock()
		r, ok := v.sites[keyring]
		v.mu.Unlock()
		if ok && anyHeld(r.kr, ids) {
			_, _ = v.reloadSite(keyring)
		}
	}
}

// removeRetired deletes the files of the retired ids in dir when dir holds a newer generation
// that is not retired; it reports whether it deleted any.
func removeRetired(dir string, ids []string, set retiredSet, keyring string) bool {
	files, err := kekFileIDs(dir)
	if err != nil || len(files) == 0 {
		return false
	}
	newest := files[len(files)-1]
	if set[[2]string{keyring, newest}] {
		return false // nothing to replace them with here: keep the files, refuse the keys
	}
	removed := false
	for _, id := range ids {
		if id == newest {
			continue
		}
		if err := os.Remove(filepath.Join(dir, id+keySuffix)); err == nil {
			removed = true
		}
	}
	return removed
}

func anyHeld(kr *seal.Keyring, ids []string) bool {
	for _, id := range ids {
		if kr.HasKEK(id) {
			return true
		}
	}
	return false
}
