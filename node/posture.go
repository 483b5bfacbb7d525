package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/posture"
	"github.com/vitalgate/vitalgate/sbom"
)

// PostureFleet is the fleet as the posture capability reads it: the registry's devices,
// the versions they reported installed (kept by the rollout capability in the rollout
// store's device_versions), the update repository's releases and the rollouts' progress.
type PostureFleet struct {
	Registry interface {
		Devices(context.Context) ([]vitalgate.Device, error)
	}
	RolloutStore vitalgate.RolloutStore
	UpdateStore  vitalgate.UpdateStore
}

var _ posture.Fleet = PostureFleet{}

// rolloutsRead bounds the rollouts read per report (newest first).
const rolloutsRead = 200

// postureDevices returns every device of a model with the version it reported last.
func (f PostureFleet) postureDevices(ctx context.Context) ([]posture.Device, error) {
	ds, err := f.Registry.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]posture.Device, 0, len(ds))
	for _, d := range ds {
		if d.Model == "" || d.Status == vitalgate.DeviceRevoked {
			continue
		}
		pd := posture.Device{ID: d.ID, Model: d.Model, Site: vitalgate.StoredSite(d.Site)}
		v, err := f.RolloutStore.DeviceVersion(ctx, d.ID)
		switch {
		case err == nil:
			pd.Version, pd.ReportedAt = v.Version, v.UpdatedAt
		case vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND:
			return nil, err
		}
		out = append(out, pd)
	}
	return out, nil
}

// Devices implements posture.Fleet.
func (f PostureFleet) Devices(ctx context.Context) ([]posture.Device, error) {
	return f.postureDevices(ctx)
}

// Releases implements posture.Fleet: the update repository's releases of model ("": all).
func (f PostureFleet) Releases(ctx context.Context, model string) ([]posture.Release, error) {
	rs, err := f.UpdateStore.UpdateReleases(ctx, model)
	if err != nil {
		return nil, err
	}
	out := make([]posture.Release, len(rs))
	for i, r := range rs {
		out[i] = posture.Release{Model: r.Model, Version: r.Version, Live: r.Live, Created: r.Created, LiveAt: r.LiveAt, SBOM: r.SBOM}
	}
	return out, nil
}

// Rollouts implements posture.Fleet: the rollouts of model ("": all), newest first, with
// how many of their devices run the version.
func (f PostureFleet) Rollouts(ctx context.Context, model string) ([]posture.Rollout, error) {
	rs, err := f.RolloutStore.Rollouts(ctx, model, rolloutsRead)
	if err != nil {
		return nil, err
	}
	out := make([]posture.Rollout, 0, len(rs))
	for _, r := range rs {
		rows, err := f.RolloutStore.RolloutDevices(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		p := posture.Rollout{Model: r.Model, Version: r.Version, State: string(r.State), Started: r.CreatedAt, Targeted: len(rows)}
		for _, u := range rows {
			switch u.State {
			case vitalgate.UpdateInstalled, vitalgate.UpdateHealthy, vitalgate.UpdatePassed:
				p.Installed++
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// SelfSBOM returns the CycloneDX SBOM of the running binary (as `vitalgate sbom` prints
// it), for the server's own section of the posture report.
func SelfSBOM(now func() time.Time) func() ([]byte, error) {
	return func() ([]byte, error) {
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return nil, errors.New("this binary carries no build information")
		}
		bom, err := sbom.CycloneDX(bi, sbom.Options{Now: now()})
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := sbom.WriteJSON(&b, bom); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
}

// Posture builds the posture capability on the node's store: its documents, devices,
// versions, releases and rollouts; audit entries through alog.
func (n *Node) Posture(alog *audit.Log) (*posture.Service, error) {
	ps, ok1 := n.Store.(posture.Store)
	rs, ok2 := n.Store.(vitalgate.RolloutStore)
	us, ok3 := n.Store.(vitalgate.UpdateStore)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("the store (%T) keeps no vulnerability posture", n.Store)
	}
	now := n.env.Now
	if now == nil {
		now = time.Now
	}
	return &posture.Service{Store: ps, Fleet: PostureFleet{Registry: n.Store, RolloutStore: rs, UpdateStore: us}, Audit: alog,
		Self: SelfSBOM(now), Now: now}, nil
}

// evidencePosture is the posture the evidence report reads (nil when the store keeps
// none); a report only reads, so it writes no audit entry.
func (n *Node) evidencePosture() interface {
	Report(ctx context.Context, q posture.Query) (posture.Report, error)
} {
	p, err := n.Posture(nil)
	if err != nil {
		return nil
	}
	return p
}
