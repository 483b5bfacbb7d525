package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/erasure"
)

func (m *Main) runPatient(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "patient", args, map[string]func(context.Context, []string) error{
		"erase": m.patientErase, "hold": m.patientHold, "release-hold": m.patientReleaseHold,
		"admit": m.patientAdmit, "discharge": m.patientDischarge,
	})
}

// erasureService opens the data dir and returns its erasure capability, auditing as "cli".
// The operator of every act is the user running the command ($USER), as for every other
// administrative command.
func (m *Main) erasureService(ctx context.Context, dir string) (*erasure.Service, *node, error) {
	n, err := m.openDataDir(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		_ = n.Close()
		return nil, nil, err
	}
	return erasure.New(n.store, n.vault, alog, m.Now), n, nil
}

// patientError gives the erasure's refusals as their plain message.
func patientError(err error) error {
	if vitalgate.ErrorCode(err) == vitalgate.EFORBIDDEN {
		return errors.New(vitalgate.ErrorMessage(err))
	}
	return cliError(err)
}

// patientErase requests an erasure (--id, --reason: the request id alone on standard output)
// or approves one (--approve REQUEST-ID), which erases the patient.
func (m *Main) patientErase(ctx context.Context, args []string) error {
	fs := m.flags("patient erase", "patient erase --data DIR --id ID --reason TEXT [--site S]\n"+
		"       vitalgate patient erase --data DIR --approve REQUEST-ID   (by another operator)")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "id of the patient to erase")
	reason := fs.String("reason", "", "why the patient is erased (kept with the request, not in the audit log)")
	site := fs.String("site", vitalgate.DefaultSite, "the patient's site")
	approve := fs.String("approve", "", "approve this erasure request (another operator's) and erase the patient: it cannot be undone")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *approve != "" {
		if *id != "" || *reason != "" {
			return errors.New("--approve takes only the request id: the patient and reason are the request's")
		}
		return m.approveErasure(ctx, *dir, *approve)
	}
	if *id == "" || *reason == "" {
		return errors.New("patient erase needs --id and --reason (or --approve REQUEST-ID to approve a request)")
	}
	if err := checkID("patient", *id); err != nil {
		return err
	}
	svc, n, err := m.erasureService(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	req, err := svc.Request(ctx, operator(), *site, *id, *reason)
	if err != nil {
		return patientError(err)
	}
	fmt.Fprintln(m.Stdout, req)
	fmt.Fprintf(m.Stderr, "Erasure of patient %s of site %s requested by %s as %s. Nothing is erased yet.\n"+
		"Another operator approves it with `vitalgate patient erase --data %s --approve %s`; that cannot be undone.\n",
		*id, *site, operator(), req, *dir, req)
	return nil
}

// approveErasure approves request id and reports what the erasure did and what the operator
// must do on the other nodes.
func (m *Main) approveErasure(ctx context.Context, dir, id string) error {
	svc, n, err := m.erasureService(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()
	res, err := svc.Approve(ctx, operator(), id)
	if err != nil {
		return patientError(err)
	}
	destroyed := make([]string, len(res.Destroyed))
	for i, p := range res.Destroyed {
		destroyed[i] = strings.TrimSuffix(filepath.Base(p), ".key")
	}
	keyDir := filepath.Join(n.dir, keysDir)
	if len(res.Destroyed) > 0 {
		keyDir = filepath.Dir(res.Destroyed[0])
	}
	newKey := filepath.Join(keyDir, res.NewKEK+".key")
	fmt.Fprintf(m.Stderr, "Erasure %s approved by %s: deleted the patient's data keys (%d), resources (%d) and device assignments (%d).\n"+
		"Key-encryption key %s replaces %s (destroyed here); data keys of other patients rewrapped: %d.\n"+
		"Now copy %s to the same place in every other node's data directory (mode 0600): until then they answer 503,\n"+
		"and once they have it they delete their copies of the old key. Delete the old key from any key backup too.\n"+
		"Database backups taken before now still hold the erased rows, but only under the destroyed key.\n",
		id, operator(), res.DataKeys, res.Resources, res.Assignments, res.NewKEK, strings.Join(destroyed, ", "), res.Rewrapped, newKey)
	return nil
}

// patientHold places a legal hold, which blocks the patient's erasure.
func (m *Main) patientHold(ctx context.Context, args []string) error {
	fs := m.flags("patient hold", "patient hold --data DIR --id ID --reason TEXT [--site S]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "id of the patient")
	reason := fs.String("reason", "", "why the patient's data must be kept (kept with the hold, not in the audit log)")
	site := fs.String("site", vitalgate.DefaultSite, "the patient's site")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("patient", *id); err != nil {
		return err
	}
	svc, n, err := m.erasureService(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := svc.Hold(ctx, operator(), *site, *id, *reason); err != nil {
		return patientError(err)
	}
	fmt.Fprintf(m.Stderr, "Legal hold placed on patient %s of site %s by %s: the patient cannot be erased until `vitalgate patient release-hold`.\n", *id, *site, operator())
	return nil
}

// patientReleaseHold removes a legal hold.
func (m *Main) patientReleaseHold(ctx context.Context, args []string) error {
	fs := m.flags("patient release-hold", "patient release-hold --data DIR --id ID [--site S]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "id of the patient")
	site := fs.String("site", vitalgate.DefaultSite, "the patient's site")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("patient", *id); err != nil {
		return err
	}
	svc, n, err := m.erasureService(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := svc.ReleaseHold(ctx, operator(), *site, *id); err != nil {
		return patientError(err)
	}
	fmt.Fprintf(m.Stderr, "Legal hold on patient %s of site %s released by %s.\n", *id, *site, operator())
	return nil
}
