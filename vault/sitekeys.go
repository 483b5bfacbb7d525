package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/seal"
)

// sitesDir is the folder of the key directory that holds each site's own KEKs:
// keys/sites/<site>/kek-<n>.key. A site's keyring uses the deployment's blind-index key
// (keys/index.key): blind indexes are the deployment's, only the wrapping is the site's.
const sitesDir = "sites"

// SiteKeyDir returns the folder of site's own KEKs in the key directory keyDir.
func SiteKeyDir(keyDir, site string) string { return filepath.Join(keyDir, sitesDir, site) }

// CreateSiteKeys creates site's own first KEK, kek-1.key, in keyDir/sites/<site>/ (mode
// 0700 folders, a 0600 file), so that the site's patient data keys are wrapped by a key of
// its own. Returns ECONFLICT if the site has a KEK already, EINVALID for a bad site id. rnd
// nil means crypto/rand.Reader.
func CreateSiteKeys(keyDir, site string, rnd io.Reader) error {
	if err := vitalgate.CheckSiteID(site); err != nil {
		return err
	}
	dir := SiteKeyDir(keyDir, site)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return vitalgate.Internal(err, "vault: create site keys")
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o700); err != nil { // #nosec G302 -- a directory: owner-only rwx, which needs x to be traversed
			return vitalgate.Internal(err, "vault: create site keys")
		}
	}
	ids, err := kekFileIDs(dir)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		return vitalgate.Errorf(vitalgate.ECONFLICT, "site %q has its own key-encryption key already", site)
	}
	return createKeyFile(dir, kekID(1)+keySuffix, rnd)
}

// LoadSiteKeyring loads site's own keyring: its KEKs and the deployment's index key.
func LoadSiteKeyring(keyDir, site string) (*seal.Keyring, error) {
	if err := vitalgate.CheckSiteID(site); err != nil {
		return nil, err
	}
	kr, err := loadKeys(SiteKeyDir(keyDir, site), filepath.Join(keyDir, indexKeyFile))
	if err != nil {
		return nil, vitalgate.Internal(err, "vault: load the keys of site "+site)
	}
	return kr, nil
}

// AddSiteKEK adds the next generation of site's own KEK (as AddKEK for the deployment's)
// and returns the site's reloaded keyring.
func AddSiteKEK(keyDir, site string, rnd io.Reader) (*seal.Keyring, error) {
	kr, err := LoadSiteKeyring(keyDir, site)
	if err != nil {
		return nil, err
	}
	if err := createKeyFile(SiteKeyDir(keyDir, site), kekID(kr.CurrentGeneration()+1)+keySuffix, rnd); err != nil {
		return nil, err
	}
	return LoadSiteKeyring(keyDir, site)
}

// siteRing is a site's own keyring as the vault holds it.
type siteRing struct {
	kr       *seal.Keyring
	loadedAt time.Time
}

// ownKeys reports whether site has its own KEK (Site.OwnKeys), from the store once per site
// (it never changes once the site exists).
func (v *Vault) ownKeys(ctx context.Context, site string) (bool, error) {
	if site == "" || site == vitalgate.DefaultSite {
		return false, nil
	}
	v.mu.Lock()
	own, ok := v.own[site]
	v.mu.Unlock()
	if ok {
		return own, nil
	}
	s, err := v.store.Site(ctx, site)
	if err != nil {
		return false, err
	}
	v.mu.Lock()
	v.own[site] = s.OwnKeys
	v.mu.Unlock()
	return s.OwnKeys, nil
}

// ring returns the keyring that wraps the data keys of site: its own when it has one, the
// deployment's otherwise. fresh reloads a site's keyring from the key directory first when
// the one held is older than the reload interval (a rotation by another process), as the
// deployment's keyring is before a new data key.
func (v *Vault) ring(ctx context.Context, site string, fresh bool) (*seal.Keyring, error) {
	own, err := v.ownKeys(ctx, site)
	if err != nil || !own {
		return v.kr(), err
	}
	v.mu.Lock()
	r, ok := v.sites[site]
	v.mu.Unlock()
	if ok && (!fresh || v.now().Sub(r.loadedAt) < v.reloadInterval()) {
		return r.kr, nil
	}
	return v.reloadSite(site)
}

// SiteKeyring returns the keyring that wraps the data keys of site (its own when it has
// one, the deployment's otherwise), fresh: a key wrapped by it is destroyed with the site's
// patients' keys when an erasure in the site shreds that key-encryption key (ShredKEK).
func (v *Vault) SiteKeyring(ctx context.Context, site string) (*seal.Keyring, error) {
	return v.ring(ctx, site, true)
}

func (v *Vault) reloadInterval() time.Duration {
	if v.interval > 0 {
		return v.interval
	}
	return DefaultReloadInterval
}

// reloadSite loads site's own keyring from the key directory.
func (v *Vault) reloadSite(site string) (*seal.Keyring, error) {
	if v.keyDir == "" {
		return nil, vitalgate.Unavailable(errors.New("vault: no key directory to load site keys from"),
			fmt.Sprintf("this server cannot load the keys of site %q", site))
	}
	kr, err := LoadSiteKeyring(v.keyDir, site)
	if err != nil {
		return nil, vitalgate.Unavailable(err,
			fmt.Sprintf("this server lacks the key-encryption key of site %q; the operator must copy %s to this node's data directory (see SECURITY.md, key rotation)",
				site, filepath.Join("keys", sitesDir, site)))
	}
	v.mu.Lock()
	v.sites[site] = siteRing{kr: kr, loadedAt: v.now()}
	v.mu.Unlock()
	return kr, nil
}

// siteOwnKeys returns, for every site, whether it has its own KEK (read before a rewrap,
// which must not call the store).
func (v *Vault) siteOwnKeys(ctx context.Context) (map[string]bool, error) {
	sites, err := v.store.Sites(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(sites))
	for _, s := range sites {
		out[s.ID] = s.OwnKeys
	}
	return out, nil
}

// NewSiteKEK adds the next generation of the own KEK of site (AddSiteKEK in the key directory
// v follows), after checking that the site has keys of its own. Errors: those of RotateSite.
func (v *Vault) NewSiteKEK(ctx context.Context, site string) (*seal.Keyring, error) {
	if err := v.checkOwn(ctx, site); err != nil {
		return nil, err
	}
	if v.keyDir == "" {
		return nil, errors.New("vault: no key directory (FollowKeyDir) to add a site key to")
	}
	return AddSiteKEK(v.keyDir, site, v.rand)
}

func (v *Vault) checkOwn(ctx context.Context, site string) error {
	own, err := v.ownKeys(ctx, site)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "no site %q exists", site)
	} else if err != nil {
		return err
	}
	if !own {
		return vitalgate.Errorf(vitalgate.EINVALID, "site %q has no key-encryption key of its own: its data keys rotate with the deployment's (keys rotate without --site)", site)
	}
	return nil
}

// RotateSite rewraps the data keys of site under the current generation of its own KEK
// (add one first with AddSiteKEK) and returns how many changed; the data keys of every other
// site are not touched. Errors: EINVALID for a site without keys of its own (rotate the
// deployment's KEK instead: Rotate), ENOTFOUND for an unknown site.
func (v *Vault) RotateSite(ctx context.Context, site string) (int, error) {
	if err := v.checkOwn(ctx, site); err != nil {
		return 0, err
	}
	kr, err := v.reloadSite(site)
	if err != nil {
		return 0, err
	}
	return v.store.RewrapDataKeys(ctx, func(k vitalgate.DataKey) ([]byte, bool, error) {
		if k.Site != site {
			return nil, false, nil
		}
		return kr.RewrapDataKey(k.Wrapped, keyAAD(k.PatientIndex), v.rand)
	})
}

// RotateSiteAs is RotateSite recorded in alog (done by operator), as RotateAs.
func (v *Vault) RotateSiteAs(ctx context.Context, alog *audit.Log, operator, site string) (int, error) {
	changed, err := v.RotateSite(ctx, site)
	if err != nil {
		return 0, err
	}
	kr, err := v.ring(ctx, site, false)
	if err != nil {
		return changed, err
	}
	if err := alog.Append(ctx, audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "keys-rotate",
		AgentType: audit.AgentOperator, AgentID: operator, Count: changed, Site: site,
		OutcomeDesc: "new key-encryption key " + kr.CurrentKEKID() + " of site " + site}); err != nil {
		return changed, fmt.Errorf("the data keys are rewrapped but the rotation could not be audited (run it again): %w", err)
	}
	return changed, nil
}

// CreateSiteKeys creates site's own first KEK in the key directory v follows (for package
// site's Admin.Keys).
func (v *Vault) CreateSiteKeys(site string) error {
	if v.keyDir == "" {
		return errors.New("vault: no key directory (FollowKeyDir) to create site keys in")
	}
	return CreateSiteKeys(v.keyDir, site, v.rand)
}
