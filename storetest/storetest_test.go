package storetest_test

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/storetest"
)

// TestMemStore runs the suite against a minimal in-memory reference store, to show that the
// suite asks for the contract and not for one implementation's habits: memStore, unlike the
// SQL stores, keeps nanoseconds and checks nothing beyond the interface's doc comments.
func TestMemStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) vitalgate.Store { return newMemStore() })
}

type memStore struct {
	mu        sync.Mutex
	devices   map[string]vitalgate.Device
	certs     map[string]vitalgate.Certificate
	clients   map[string]vitalgate.Client
	resources map[[2]string]vitalgate.SealedResource
	keys      map[string]vitalgate.DataKey
}

func newMemStore() *memStore {
	return &memStore{
		devices:   make(map[string]vitalgate.Device),
		certs:     make(map[string]vitalgate.Certificate),
		clients:   make(map[string]vitalgate.Client),
		resources: make(map[[2]string]vitalgate.SealedResource),
		keys:      make(map[string]vitalgate.DataKey),
	}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func notFound(what string) error { return vitalgate.Errorf(vitalgate.ENOTFOUND, "%s not found", what) }
func conflict(what string) error { return vitalgate.Errorf(vitalgate.ECONFLICT, "%s exists", what) }

func (m *memStore) CreateDevice(_ context.Context, d vitalgate.Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.devices[d.ID]; ok {
		return conflict("device")
	}
	d.CreatedAt, d.UpdatedAt, d.EnrollExpiresAt = utc(d.CreatedAt), utc(d.UpdatedAt), utc(d.EnrollExpiresAt)
	m.devices[d.ID] = d
	return nil
}

func (m *memStore) Device(_ context.Context, id string) (vitalgate.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return d, notFound("device")
	}
	return d, nil
}

func (m *memStore) Devices(context.Context) ([]vitalgate.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ds []vitalgate.Device
	for _, d := range m.devices {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	return ds, nil
}

func (m *memStore) ConsumeEnrollSecret(_ context.Context, id, hash string, c vitalgate.Certificate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return notFound("device")
	}
	if d.EnrollSecretHash == "" || d.EnrollSecretHash != hash {
		return conflict("enrollment")
	}
	if _, ok := m.certs[c.Serial]; ok {
		return conflict("certificate")
	}
	d.EnrollSecretHash = ""
	m.devices[id] = d
	m.certs[c.Serial] = utcCert(c)
	return nil
}

func utcCert(c vitalgate.Certificate) vitalgate.Certificate {
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = utc(c.NotBefore), utc(c.NotAfter), utc(c.IssuedAt), utc(c.RevokedAt)
	return c
}

func (m *memStore) SetEnrollSecret(_ context.Context, id, hash string, exp time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return notFound("device")
	}
	d.EnrollSecretHash, d.EnrollExpiresAt = hash, utc(exp)
	m.devices[id] = d
	return nil
}

func (m *memStore) AssignPatient(_ context.Context, id string, idx, sealed []byte, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return notFound("device")
	}
	d.PatientIndex, d.PatientSealed, d.UpdatedAt = idx, sealed, utc(at)
	m.devices[id] = d
	return nil
}

func (m *memStore) AddCertificate(_ context.Context, c vitalgate.Certificate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.devices[c.DeviceID]; !ok {
		return notFound("device")
	}
	if _, ok := m.certs[c.Serial]; ok {
		return conflict("certificate")
	}
	m.certs[c.Serial] = utcCert(c)
	return nil
}

func (m *memStore) Certificate(_ context.Context, serial string) (vitalgate.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.certs[serial]
	if !ok {
		return c, notFound("certificate")
	}
	return c, nil
}

func (m *memStore) RevokeDevice(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return notFound("device")
	}
	d.Status, d.UpdatedAt = vitalgate.DeviceRevoked, utc(at)
	m.devices[id] = d
	for s, c := range m.certs {
		if c.DeviceID == id && c.RevokedAt.IsZero() {
			c.RevokedAt = utc(at)
			m.certs[s] = c
		}
	}
	return nil
}

func (m *memStore) CreateClient(_ context.Context, c vitalgate.Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.clients[c.ID]; ok {
		return conflict("client")
	}
	c.CreatedAt = utc(c.CreatedAt)
	m.clients[c.ID] = c
	return nil
}

func (m *memStore) Client(_ context.Context, id string) (vitalgate.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return c, notFound("client")
	}
	return c, nil
}

func (m *memStore) CreateResources(_ context.Context, rs []vitalgate.SealedResource) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[[2]string]bool)
	for _, r := range rs {
		k := [2]string{r.Type, r.ID}
		if _, ok := m.resources[k]; ok || seen[k] {
			return conflict("resource")
		}
		seen[k] = true
	}
	for _, r := range rs {
		r.Effective, r.LastUpdated = utc(r.Effective), utc(r.LastUpdated)
		m.resources[[2]string{r.Type, r.ID}] = r
	}
	return nil
}

func (m *memStore) Resource(_ context.Context, typ, id string) (vitalgate.SealedResource, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.resources[[2]string{typ, id}]
	if !ok {
		return r, notFound("resource")
	}
	return r, nil
}

func (m *memStore) Resources(_ context.Context, f vitalgate.ResourceFilter, fn func(vitalgate.SealedResource) error) error {
	m.mu.Lock()
	var rs []vitalgate.SealedResource
	for _, r := range m.resources {
		switch {
		case f.Type != "" && r.Type != f.Type,
			len(f.PatientIndex) > 0 && !bytes.Equal(r.PatientIndex, f.PatientIndex),
			len(f.CodeIndex) > 0 && !slices.ContainsFunc(r.CodeIndexes, func(c []byte) bool { return bytes.Equal(c, f.CodeIndex) }),
			!f.Since.IsZero() && r.LastUpdated.Before(f.Since),
			r.ID <= f.After:
			continue
		}
		rs = append(rs, r)
	}
	m.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].ID != rs[j].ID {
			return rs[i].ID < rs[j].ID
		}
		return rs[i].Type < rs[j].Type
	})
	if f.Limit > 0 && len(rs) > f.Limit {
		rs = rs[:f.Limit]
	}
	for _, r := range rs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) DataKey(_ context.Context, idx []byte) (vitalgate.DataKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[string(idx)]
	if !ok {
		return k, notFound("data key")
	}
	return k, nil
}

func (m *memStore) PutDataKey(_ context.Context, k vitalgate.DataKey) (vitalgate.DataKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.keys[string(k.PatientIndex)]; ok {
		return old, nil
	}
	k.CreatedAt = utc(k.CreatedAt)
	m.keys[string(k.PatientIndex)] = k
	return k, nil
}

func (m *memStore) RewrapDataKeys(_ context.Context, rewrap func(vitalgate.DataKey) ([]byte, bool, error)) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := make(map[string]vitalgate.DataKey, len(m.keys))
	n := 0
	for id, k := range m.keys {
		w, ok, err := rewrap(k)
		if err != nil {
			return 0, err
		}
		if ok {
			k.Wrapped = w
			n++
		}
		next[id] = k
	}
	m.keys = next
	return n, nil
}

func (m *memStore) Ping(context.Context) error { return nil }
func (m *memStore) Close() error               { return nil }
