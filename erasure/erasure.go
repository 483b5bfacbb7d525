// Package erasure erases a patient by crypto-shredding: one admin requests it, another
// approves it, and a legal hold blocks it. On approval the patient's wrapped data key, its
// resources and its blind-index rows are deleted in one transaction, then the key-encryption
// key of the patient's site is replaced and the old one destroyed, so that copies of the
// erased wrapped key left in dead rows, WAL, replicas or backups cannot be unwrapped. Every
// step is audited, naming the patient only by its blind index.
package erasure

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/vault"
)

// Keys is the part of the vault erasure needs.
type Keys interface {
	SitePatientIndex(site, patientID string) []byte
	Forget(patientIndex []byte)
	ForgetAll()
	ShredKEK(ctx context.Context, site string) (vault.Shredded, error)
}

// Store is what erasure needs from storage: the erasures and the sites.
type Store interface {
	vitalgate.ErasureStore
	// Site returns a site. ENOTFOUND.
	Site(ctx context.Context, id string) (vitalgate.Site, error)
}

// Service requests, approves and blocks erasures.
type Service struct {
	store Store
	keys  Keys
	alog  *audit.Log
	now   func() time.Time
}

// New returns a Service. now may be nil for the real clock.
func New(store Store, keys Keys, alog *audit.Log, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, keys: keys, alog: alog, now: now}
}

// Result says what an approved erasure did.
type Result struct {
	vitalgate.Erased
	vault.Shredded
}

func check(operator, site, patientID, reason string) error {
	if operator == "" {
		return vitalgate.Errorf(vitalgate.EINVALID, "an erasure needs the operator's name")
	}
	if err := vitalgate.CheckSiteID(site); err != nil {
		return err
	}
	if patientID == "" {
		return vitalgate.Errorf(vitalgate.EINVALID, "an erasure needs the patient's id")
	}
	if reason == "" {
		return vitalgate.Errorf(vitalgate.EINVALID, "an erasure needs a reason")
	}
	return nil
}

func (s *Service) entry(action, subtype, operator, site string, idx []byte, desc string) audit.Entry {
	return audit.Entry{Action: action, Type: "admin", Subtype: subtype, AgentType: audit.AgentOperator,
		AgentID: operator, Site: site, PatientIndex: audit.PatientIndex(idx), OutcomeDesc: desc}
}

// Request records operator's request to erase patientID of site and returns its id. The
// reason is stored with the request, not in the audit log (it may name the patient).
func (s *Service) Request(ctx context.Context, operator, site, patientID, reason string) (string, error) {
	if err := check(operator, site, patientID, reason); err != nil {
		return "", err
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", vitalgate.Internal(err, "erasure request id")
	}
	id := "er-" + hex.EncodeToString(b)
	idx := s.keys.SitePatientIndex(site, patientID)
	if err := s.store.CreateErasureRequest(ctx, vitalgate.ErasureRequest{ID: id, Site: site, PatientIndex: idx,
		Reason: reason, RequestedBy: operator, RequestedAt: s.now().UTC()}); err != nil {
		return "", err
	}
	if err := s.alog.Append(ctx, s.entry(audit.ActionCreate, "erasure-request", operator, site, idx, "erasure "+id+" requested")); err != nil {
		return id, fmt.Errorf("erasure %s is requested but the request could not be audited: %w", id, err)
	}
	return id, nil
}

// Approve approves erasure request id by operator, who must not be its requester, and
// erases the patient: data key, resources and index rows in one transaction with its audit
// entry, then the site's key-encryption key is replaced and the old one destroyed (a second
// audit entry). If the key replacement fails after the data is erased the error says so;
// run `vitalgate keys rotate` and delete the old KEK files by hand.
func (s *Service) Approve(ctx context.Context, operator, id string) (Result, error) {
	return s.approve(ctx, operator, id, "")
}

// approve is Approve of a request of site ("" for any site).
func (s *Service) approve(ctx context.Context, operator, id, site string) (Result, error) {
	var out Result
	if operator == "" {
		return out, vitalgate.Errorf(vitalgate.EINVALID, "an approval needs the operator's name")
	}
	if id == "" {
		return out, vitalgate.Errorf(vitalgate.EINVALID, "an approval needs the erasure request's id (printed when it was requested)")
	}
	r, err := s.store.ErasureRequest(ctx, id)
	if err == nil && site != "" && r.Site != site {
		err = vitalgate.NotFound("erasure request", nil)
	}
	if err != nil {
		return out, err
	}
	if r.SiteErasure() {
		if site != "" {
			return out, vitalgate.Errorf(vitalgate.EFORBIDDEN, "a whole site is erased by the deployment's operators at the command line (vitalgate site erase --approve)")
		}
		return out, vitalgate.Errorf(vitalgate.EINVALID, "erasure request %s erases a whole site: approve it with `vitalgate site erase --approve %s`", id, id)
	}
	e := s.alog.Encode(ctx, s.entry(audit.ActionDelete, "erasure", operator, r.Site, r.PatientIndex,
		"erasure "+id+" requested by "+r.RequestedBy+" approved"))
	if out.Erased, err = s.store.ErasePatient(ctx, id, operator, s.now().UTC(), e); err != nil {
		return out, err
	}
	s.keys.Forget(r.PatientIndex)
	if out.Shredded, err = s.keys.ShredKEK(ctx, r.Site); err != nil {
		return out, fmt.Errorf("the patient's data and data key are erased but the key-encryption key could not be replaced (run `vitalgate keys rotate`, then delete the older kek files): %w", err)
	}
	if err := s.alog.Append(ctx, audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "keys-rotate",
		AgentType: audit.AgentOperator, AgentID: operator, Count: out.Rewrapped, Site: r.Site,
		OutcomeDesc: fmt.Sprintf("after erasure %s: new key-encryption key %s, %d old destroyed", id, out.NewKEK, len(out.Destroyed))}); err != nil {
		return out, fmt.Errorf("erasure done but the key replacement could not be audited: %w", err)
	}
	return out, nil
}

// RequestSite records operator's request to erase the whole site (every patient's data key
// and data, its devices' certificates, its clients): a hospital that leaves the deployment.
// Another operator approves it with Approve. The default site cannot be erased. The reason
// is stored with the request, not in the audit log.
func (s *Service) RequestSite(ctx context.Context, operator, site, reason string) (string, error) {
	if err := check(operator, site, "-", reason); err != nil {
		return "", err
	}
	if site == vitalgate.DefaultSite {
		return "", vitalgate.FieldErrorf(vitalgate.EINVALID, "site", "the default site cannot be erased: erase its patients one by one (vitalgate patient erase)")
	}
	st, err := s.store.Site(ctx, site)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return "", vitalgate.FieldErrorf(vitalgate.ENOTFOUND, "site", "no site %q exists (vitalgate site list)", site)
		}
		return "", err
	}
	if err := vitalgate.CheckSiteOpen(st); err != nil {
		return "", err
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", vitalgate.Internal(err, "erasure request id")
	}
	id := "se-" + hex.EncodeToString(b)
	if err := s.store.CreateErasureRequest(ctx, vitalgate.ErasureRequest{ID: id, Site: site,
		Reason: reason, RequestedBy: operator, RequestedAt: s.now().UTC()}); err != nil {
		return "", err
	}
	if err := s.alog.Append(ctx, s.entry(audit.ActionCreate, "site-erasure-request", operator, site, nil, "erasure "+id+" of the whole site requested")); err != nil {
		return id, fmt.Errorf("erasure %s is requested but the request could not be audited: %w", id, err)
	}
	return id, nil
}

// ApproveSite approves site-erasure request id by operator, who must not be its requester,
// and erases the whole site. It cannot be undone.
func (s *Service) ApproveSite(ctx context.Context, operator, id string) (Result, error) {
	if operator == "" {
		return Result{}, vitalgate.Errorf(vitalgate.EINVALID, "an approval needs the operator's name")
	}
	r, err := s.store.ErasureRequest(ctx, id)
	if err != nil {
		return Result{}, err
	}
	if !r.SiteErasure() {
		return Result{}, vitalgate.Errorf(vitalgate.EINVALID, "erasure request %s erases one patient: approve it with `vitalgate patient erase --approve %s`", id, id)
	}
	return s.approveSite(ctx, operator, r)
}

// approveSite erases the whole site of request r: data keys, resources, devices, clients
// in one transaction with its audit entry (the store's EraseSite), then every cached cipher
// is dropped and the key-encryption key of the site is replaced and the old one destroyed,
// so that no copy of the site's wrapped data keys can be unwrapped.
func (s *Service) approveSite(ctx context.Context, operator string, r vitalgate.ErasureRequest) (Result, error) {
	var out Result
	var err error
	e := s.alog.Encode(ctx, s.entry(audit.ActionDelete, "site-erasure", operator, r.Site, nil,
		"erasure "+r.ID+" of the whole site requested by "+r.RequestedBy+" approved"))
	if out.Erased, err = s.store.EraseSite(ctx, r.ID, operator, s.now().UTC(), e); err != nil {
		return out, err
	}
	s.keys.ForgetAll()
	if out.Shredded, err = s.keys.ShredKEK(ctx, r.Site); err != nil {
		return out, fmt.Errorf("the site's data and data keys are erased but its key-encryption key could not be replaced (run `vitalgate keys rotate --site %s`, then delete the older kek files): %w", r.Site, err)
	}
	if err := s.alog.Append(ctx, audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "keys-rotate",
		AgentType: audit.AgentOperator, AgentID: operator, Count: out.Rewrapped, Site: r.Site,
		OutcomeDesc: fmt.Sprintf("after erasure %s: new key-encryption key %s, %d old destroyed", r.ID, out.NewKEK, len(out.Destroyed))}); err != nil {
		return out, fmt.Errorf("site erased but the key replacement could not be audited: %w", err)
	}
	return out, nil
}

// Hold places a legal hold on patientID of site, which blocks its erasure.
func (s *Service) Hold(ctx context.Context, operator, site, patientID, reason string) error {
	if err := check(operator, site, patientID, reason); err != nil {
		return err
	}
	idx := s.keys.SitePatientIndex(site, patientID)
	if err := s.store.PutLegalHold(ctx, vitalgate.LegalHold{Site: site, PatientIndex: idx, Reason: reason, PlacedBy: operator, PlacedAt: s.now().UTC()}); err != nil {
		return err
	}
	return s.alog.Append(ctx, s.entry(audit.ActionCreate, "legal-hold", operator, site, idx, "legal hold placed"))
}

// ReleaseHold removes the legal hold on patientID of site. Its reason, if any, is not
// stored: the audit entry records who released the hold and when.
func (s *Service) ReleaseHold(ctx context.Context, operator, site, patientID string) error {
	if err := check(operator, site, patientID, "release"); err != nil {
		return err
	}
	idx := s.keys.SitePatientIndex(site, patientID)
	if err := s.store.ReleaseLegalHold(ctx, site, idx); err != nil {
		return err
	}
	return s.alog.Append(ctx, s.entry(audit.ActionDelete, "legal-hold", operator, site, idx, "legal hold released"))
}

// The methods below are the same acts done by an admin API client (the admin API): the
// operator is the client, named "client:<id>" so that it is never taken for a person of the
// same name at the command line, and the site is the client's. A deployment-wide client
// names no site, so it can do none of them; a request of another site is not found.

// principalOperator returns the operator name and site of an admin API client.
func principalOperator(p vitalgate.Principal) (string, string, error) {
	if p.ID == "" {
		return "", "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "an erasure needs an authenticated admin client")
	}
	if p.Site == "" || p.Site == vitalgate.AllSites {
		return "", "", vitalgate.Errorf(vitalgate.EFORBIDDEN, "a deployment-wide client names no site: erase with an admin client of the patient's site")
	}
	return "client:" + p.ID, p.Site, nil
}

// RequestFor is Request by the admin API client p, for a patient of its site.
func (s *Service) RequestFor(ctx context.Context, p vitalgate.Principal, patientID, reason string) (string, error) {
	op, site, err := principalOperator(p)
	if err != nil {
		return "", err
	}
	return s.Request(ctx, op, site, patientID, reason)
}

// ApproveFor is Approve by the admin API client p of a request of its site (ENOTFOUND for
// another site's, as for one that does not exist).
func (s *Service) ApproveFor(ctx context.Context, p vitalgate.Principal, id string) (Result, error) {
	op, site, err := principalOperator(p)
	if err != nil {
		return Result{}, err
	}
	return s.approve(ctx, op, id, site)
}

// HoldFor is Hold by the admin API client p, on a patient of its site.
func (s *Service) HoldFor(ctx context.Context, p vitalgate.Principal, patientID, reason string) error {
	op, site, err := principalOperator(p)
	if err != nil {
		return err
	}
	return s.Hold(ctx, op, site, patientID, reason)
}

// ReleaseHoldFor is ReleaseHold by the admin API client p, on a patient of its site.
func (s *Service) ReleaseHoldFor(ctx context.Context, p vitalgate.Principal, patientID string) error {
	op, site, err := principalOperator(p)
	if err != nil {
		return err
	}
	return s.ReleaseHold(ctx, op, site, patientID)
}
