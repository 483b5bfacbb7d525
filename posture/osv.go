package posture

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
)

// MaxAdvisoryBytes bounds one OSV record; MaxImportFiles the records of one import and
// MaxImportBytes their total size (all held in memory for the one write).
const (
	MaxAdvisoryBytes = 4 << 20
	MaxImportFiles   = 200_000
	MaxImportBytes   = 1 << 30
)

// Advisory is an OSV record (schema 1.7; older 1.x records read the same), with the
// fields matching and reporting need.
type Advisory struct {
	SchemaVersion string      `json:"schema_version,omitempty"`
	ID            string      `json:"id"`
	Modified      time.Time   `json:"modified"`
	Published     time.Time   `json:"published,omitzero"`
	Withdrawn     time.Time   `json:"withdrawn,omitzero"`
	Aliases       []string    `json:"aliases,omitempty"`
	Related       []string    `json:"related,omitempty"`
	Summary       string      `json:"summary,omitempty"`
	Severity      []Severity  `json:"severity,omitempty"`
	Affected      []Affected  `json:"affected,omitempty"`
	References    []Reference `json:"references,omitempty"`
	// DatabaseSpecific may carry a severity label (GHSA: "severity": "HIGH").
	DatabaseSpecific struct {
		Severity string `json:"severity,omitempty"`
	} `json:"database_specific,omitzero"`
}

// Severity is an OSV severity: a CVSS vector (CVSS_V2, CVSS_V3, CVSS_V4) or another scale.
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Affected is one affected package of an OSV record.
type Affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
		PURL      string `json:"purl,omitempty"`
	} `json:"package,omitzero"`
	Severity []Severity `json:"severity,omitempty"`
	Ranges   []Range    `json:"ranges,omitempty"`
	Versions []string   `json:"versions,omitempty"`
}

// Range is an OSV range: SEMVER, ECOSYSTEM or GIT, its events in order.
type Range struct {
	Type   string  `json:"type"`
	Repo   string  `json:"repo,omitempty"`
	Events []Event `json:"events"`
}

// Event is one event of a range; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Reference is a link of an OSV record.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// ParseAdvisory parses one OSV record. EINVALID for what is not one (no id, no modified
// time, an unknown range type, a range without events).
func ParseAdvisory(data []byte) (Advisory, error) {
	if len(data) > MaxAdvisoryBytes {
		return Advisory{}, vitalgate.Errorf(vitalgate.EINVALID, "the OSV record is over %d MiB", MaxAdvisoryBytes>>20)
	}
	var a Advisory
	if err := json.Unmarshal(data, &a); err != nil {
		return Advisory{}, vitalgate.Errorf(vitalgate.EINVALID, "not an OSV record: %v", err)
	}
	if a.ID == "" || len(a.ID) > 200 {
		return Advisory{}, vitalgate.Errorf(vitalgate.EINVALID, "the OSV record has no id")
	}
	for _, af := range a.Affected {
		for _, r := range af.Ranges {
			switch r.Type {
			case "SEMVER", "ECOSYSTEM", "GIT":
			default:
				return Advisory{}, vitalgate.Errorf(vitalgate.EINVALID, "%s: range type %q is not SEMVER, ECOSYSTEM or GIT", a.ID, r.Type)
			}
			if len(r.Events) == 0 {
				return Advisory{}, vitalgate.Errorf(vitalgate.EINVALID, "%s: a range without events", a.ID)
			}
		}
	}
	return a, nil
}

// CVEs returns the CVE ids the advisory is known by: its id and aliases (direct), and
// its related ids (the same flaw named elsewhere, such as a protocol's CVE).
func (a Advisory) CVEs() (direct, related []string) {
	for _, id := range append([]string{a.ID}, a.Aliases...) {
		if strings.HasPrefix(id, "CVE-") {
			direct = append(direct, id)
		}
	}
	for _, id := range a.Related {
		if strings.HasPrefix(id, "CVE-") {
			related = append(related, id)
		}
	}
	return direct, related
}

// Names returns the advisory's id and aliases.
func (a Advisory) Names() []string { return append([]string{a.ID}, a.Aliases...) }

// File is one named document read for an import.
type File struct {
	Name string
	Data []byte
}

// ReadPath reads the JSON documents at path: a file, every *.json file under a directory,
// or every *.json entry of a ZIP archive (as osv.dev publishes an ecosystem's records:
// all.zip). Each is bounded by limit bytes, at most MaxImportFiles of them.
func ReadPath(path string, limit int64) ([]File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	switch {
	case st.IsDir():
		var (
			out   []File
			total int64
		)
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(strings.ToLower(d.Name()), ".json") {
				return nil
			}
			if len(out) >= MaxImportFiles {
				return fmt.Errorf("over %d files under %s", MaxImportFiles, path)
			}
			data, err := readLimited(p, limit)
			if err != nil {
				return err
			}
			if total += int64(len(data)); total > MaxImportBytes {
				return fmt.Errorf("the files under %s are over %d MiB together: import them in parts", path, MaxImportBytes>>20)
			}
			out = append(out, File{Name: p, Data: data})
			return nil
		})
		return out, err
	case strings.HasSuffix(strings.ToLower(path), ".zip"):
		return readZip(path, limit)
	}
	data, err := readLimited(path, limit)
	if err != nil {
		return nil, err
	}
	return []File{{Name: path, Data: data}}, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- the operator names the path
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is over %d bytes", path, limit)
	}
	return data, nil
}

func readZip(path string, limit int64) ([]File, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("open the ZIP archive %s: %w", path, err)
	}
	defer zr.Close()
	var (
		out   []File
		total int64
	)
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.HasSuffix(strings.ToLower(f.Name), ".json") {
			continue
		}
		if len(out) >= MaxImportFiles {
			return nil, fmt.Errorf("over %d records in %s", MaxImportFiles, path)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", f.Name, path, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, limit+1)) // bounded whatever the header claims
		_ = rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", f.Name, path, err)
		}
		if int64(len(data)) > limit {
			return nil, fmt.Errorf("%s in %s is over %d bytes", f.Name, path, limit)
		}
		if total += int64(len(data)); total > MaxImportBytes {
			return nil, fmt.Errorf("the records in %s are over %d MiB together: import them in parts", path, MaxImportBytes>>20)
		}
		out = append(out, File{Name: f.Name, Data: data})
	}
	if len(out) == 0 {
		return nil, errors.New(path + " holds no .json record")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
