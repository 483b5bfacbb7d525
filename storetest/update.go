package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// updateTests are the conformance tests of the update repository's store (migration sqlite
// 0014, postgres 0011): metadata versions, releases, target files in chunks, all or nothing.
func (s *suite) updateTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Update/MetadataVersions", s.testUpdateMetadata},
		{"Update/ReleaseChunks", s.testUpdateRelease},
		{"Update/ReleaseAllOrNothing", s.testUpdateReleaseAtomic},
		{"Update/Sign", s.testUpdateSign},
	}
}

func updateEntry(sub string) []byte {
	return audit.Entry{Time: at(1), Action: "C", Type: "admin", Subtype: sub, Outcome: "0", AgentType: audit.AgentOperator, AgentID: "op"}.Marshal()
}

func (s *suite) testUpdateMetadata(t *testing.T) {
	st := s.store(t)
	_, err := st.UpdateMetadata(ctxT(t), "root", 0)
	wantCode(t, "UpdateMetadata on an empty store", err, vitalgate.ENOTFOUND)
	ms := []vitalgate.UpdateMetadata{
		{Role: "root", Version: 1, Data: []byte(`{"v":1}`), Expires: at(60), CreatedAt: at(1)},
		{Role: "timestamp", Version: 1, Data: []byte(`{"t":1}`), Expires: at(10)},
	}
	before, _ := st.AuditSize(ctxT(t))
	must(t, "PutUpdateMetadata", st.PutUpdateMetadata(ctxT(t), ms, updateEntry("update-refresh")))
	must(t, "PutUpdateMetadata v2", st.PutUpdateMetadata(ctxT(t), []vitalgate.UpdateMetadata{{Role: "timestamp", Version: 2, Data: []byte(`{"t":2}`), Expires: at(20)}}))
	// A second writer of the same version loses, and writes nothing of its batch.
	wantCode(t, "PutUpdateMetadata of an existing version", st.PutUpdateMetadata(ctxT(t), []vitalgate.UpdateMetadata{
		{Role: "snapshot", Version: 1, Data: []byte(`x`), Expires: at(5)},
		{Role: "timestamp", Version: 2, Data: []byte(`{"t":"other"}`), Expires: at(20)}}, updateEntry("update-refresh")), vitalgate.ECONFLICT)
	_, err = st.UpdateMetadata(ctxT(t), "snapshot", 1)
	wantCode(t, "snapshot of a refused batch", err, vitalgate.ENOTFOUND)
	wantCode(t, "PutUpdateMetadata version 0", st.PutUpdateMetadata(ctxT(t), []vitalgate.UpdateMetadata{{Role: "root", Data: []byte("x")}}), vitalgate.EINVALID)
	got, err := st.UpdateMetadata(ctxT(t), "timestamp", 0)
	must(t, "UpdateMetadata latest", err)
	if got.Version != 2 || string(got.Data) != `{"t":2}` {
		t.Errorf("latest timestamp = v%d %s", got.Version, got.Data)
	}
	checkTime(t, "Expires", got.Expires, at(20))
	got, err = st.UpdateMetadata(ctxT(t), "root", 1)
	must(t, "UpdateMetadata root 1", err)
	if string(got.Data) != `{"v":1}` {
		t.Errorf("root 1 = %s", got.Data)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, at(1))
	after, _ := st.AuditSize(ctxT(t))
	if after != before+1 {
		t.Errorf("audit size %d → %d, want one entry", before, after)
	}
}

func release(model, version string, body []byte) vitalgate.UpdateRelease {
	sum := sha256.Sum256(body)
	return vitalgate.UpdateRelease{Model: model, Version: version, Target: model + "/" + version + "/fw.bin",
		Length: int64(len(body)), SHA256: sum[:], By: "op", Created: at(2), Needed: 1, Signed: 1}
}

func (s *suite) testUpdateRelease(t *testing.T) {
	st := s.store(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), vitalgate.UpdateChunkSize/16*2+100) // three chunks, the last short
	r := release("pump", "1.0", body)
	r.Live, r.LiveAt, r.SBOM = true, at(3), []byte(`{"bomFormat":"CycloneDX"}`)
	ms := []vitalgate.UpdateMetadata{{Role: "pump", Version: 1, Data: []byte(`{"m":1}`), Expires: at(60)}}
	must(t, "CreateUpdateRelease", st.CreateUpdateRelease(ctxT(t), r, bytes.NewReader(body), ms, updateEntry("update-publish")))
	wantCode(t, "second CreateUpdateRelease", st.CreateUpdateRelease(ctxT(t), r, bytes.NewReader(body), nil), vitalgate.ECONFLICT)
	empty := release("pump", "0.1", nil)
	must(t, "CreateUpdateRelease of an empty file", st.CreateUpdateRelease(ctxT(t), empty, bytes.NewReader(nil), nil))
	got, err := st.UpdateRelease(ctxT(t), "pump", "1.0")
	must(t, "UpdateRelease", err)
	if got.Target != r.Target || got.Length != r.Length || !bytes.Equal(got.SHA256, r.SHA256) || !got.Live || string(got.SBOM) != string(r.SBOM) || got.By != "op" {
		t.Errorf("UpdateRelease = %+v", got)
	}
	checkTime(t, "LiveAt", got.LiveAt, at(3))
	var buf bytes.Buffer
	n, err := st.WriteUpdateTarget(ctxT(t), "pump", "1.0", &buf)
	must(t, "WriteUpdateTarget", err)
	if n != int64(len(body)) || !bytes.Equal(buf.Bytes(), body) {
		t.Errorf("WriteUpdateTarget wrote %d bytes, want %d (equal: %v)", n, len(body), bytes.Equal(buf.Bytes(), body))
	}
	buf.Reset()
	if n, err := st.WriteUpdateTarget(ctxT(t), "pump", "0.1", &buf); err != nil || n != 0 {
		t.Errorf("WriteUpdateTarget of an empty file = %d, %v", n, err)
	}
	_, err = st.WriteUpdateTarget(ctxT(t), "pump", "9.9", &buf)
	wantCode(t, "WriteUpdateTarget of no release", err, vitalgate.ENOTFOUND)
	_, err = st.UpdateRelease(ctxT(t), "pump", "9.9")
	wantCode(t, "UpdateRelease of no release", err, vitalgate.ENOTFOUND)
	must(t, "CreateUpdateRelease other model", st.CreateUpdateRelease(ctxT(t), release("monitor", "2", []byte("m")), bytes.NewReader([]byte("m")), nil))
	all, err := st.UpdateReleases(ctxT(t), "")
	must(t, "UpdateReleases", err)
	if len(all) != 3 || all[0].Model != "monitor" {
		t.Errorf("UpdateReleases = %d releases, first %q", len(all), all[0].Model)
	}
	pump, err := st.UpdateReleases(ctxT(t), "pump")
	must(t, "UpdateReleases(pump)", err)
	if len(pump) != 2 {
		t.Errorf("UpdateReleases(pump) = %d releases", len(pump))
	}
	wantCode(t, "CreateUpdateRelease without a hash", st.CreateUpdateRelease(ctxT(t), vitalgate.UpdateRelease{Model: "m", Version: "v", Target: "m/v/f"}, bytes.NewReader(nil), nil), vitalgate.EINVALID)
}

// failing returns its bytes, then an error: a target file that turned out wrong midway.
type failing struct{ left int }

func (f *failing) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, errors.New("the file changed")
	}
	n := min(len(p), f.left)
	f.left -= n
	return n, nil
}

func (s *suite) testUpdateReleaseAtomic(t *testing.T) {
	st := s.store(t)
	before, _ := st.AuditSize(ctxT(t))
	r := release("pump", "1.0", []byte("whatever"))
	ms := []vitalgate.UpdateMetadata{{Role: "pump", Version: 1, Data: []byte(`{}`), Expires: at(60)}}
	if err := st.CreateUpdateRelease(ctxT(t), r, &failing{left: 3 * vitalgate.UpdateChunkSize / 2}, ms, updateEntry("update-publish")); err == nil {
		t.Fatal("CreateUpdateRelease with a failing reader succeeded")
	}
	_, err := st.UpdateRelease(ctxT(t), "pump", "1.0")
	wantCode(t, "release of a failed publish", err, vitalgate.ENOTFOUND)
	_, err = st.UpdateMetadata(ctxT(t), "pump", 0)
	wantCode(t, "metadata of a failed publish", err, vitalgate.ENOTFOUND)
	// A metadata conflict also undoes the release and its chunks.
	must(t, "PutUpdateMetadata", st.PutUpdateMetadata(ctxT(t), ms))
	wantCode(t, "CreateUpdateRelease with an existing metadata version", st.CreateUpdateRelease(ctxT(t), r, bytes.NewReader([]byte("whatever")), ms), vitalgate.ECONFLICT)
	_, err = st.UpdateRelease(ctxT(t), "pump", "1.0")
	wantCode(t, "release of a conflicting publish", err, vitalgate.ENOTFOUND)
	must(t, "CreateUpdateRelease after the failures", st.CreateUpdateRelease(ctxT(t), r, bytes.NewReader([]byte("whatever")), nil))
	if after, _ := st.AuditSize(ctxT(t)); after != before {
		t.Errorf("audit size %d → %d after failed writes", before, after)
	}
}

func (s *suite) testUpdateSign(t *testing.T) {
	st := s.store(t)
	r := release("pump", "2.0", []byte("two"))
	r.Pending, r.Needed, r.Signed = []byte(`{"model":"1 sig"}`), 2, 1
	must(t, "CreateUpdateRelease", st.CreateUpdateRelease(ctxT(t), r, bytes.NewReader([]byte("two")), nil))
	got, _ := st.UpdateRelease(ctxT(t), "pump", "2.0")
	if got.Live || string(got.Pending) != `{"model":"1 sig"}` || got.Signed != 1 || got.Needed != 2 {
		t.Errorf("pending release = %+v", got)
	}
	r.Signed, r.Live, r.LiveAt, r.Pending = 2, true, at(5), nil
	ms := []vitalgate.UpdateMetadata{{Role: "pump", Version: 1, Data: []byte(`{}`), Expires: at(60)}}
	must(t, "SignUpdateRelease", st.SignUpdateRelease(ctxT(t), r, ms, updateEntry("update-sign")))
	got, _ = st.UpdateRelease(ctxT(t), "pump", "2.0")
	if !got.Live || len(got.Pending) != 0 || got.Signed != 2 {
		t.Errorf("signed release = %+v", got)
	}
	checkTime(t, "LiveAt", got.LiveAt, at(5))
	wantCode(t, "SignUpdateRelease of a live release", st.SignUpdateRelease(ctxT(t), r, nil), vitalgate.ECONFLICT)
	r.Version = "3.0"
	wantCode(t, "SignUpdateRelease of no release", st.SignUpdateRelease(ctxT(t), r, nil), vitalgate.ENOTFOUND)
}
