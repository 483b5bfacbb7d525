package posture

import (
	"encoding/json"
	"regexp"

	"github.com/vitalgate/vitalgate"
)

// MaxKEVBytes bounds a KEV catalog file (the whole catalog is a few MiB).
const MaxKEVBytes = 64 << 20

// KEV is one entry of CISA's catalog of known exploited vulnerabilities, with the fields
// kept: its dates (dateAdded, and dueDate, the remediation deadline of BOD 22-01) and
// whether it is known to be used in ransomware campaigns ("Known" or "Unknown").
type KEV struct {
	CVE        string `json:"cveID"`
	Vendor     string `json:"vendorProject,omitempty"`
	Product    string `json:"product,omitempty"`
	Name       string `json:"vulnerabilityName,omitempty"`
	DateAdded  string `json:"dateAdded"`
	DueDate    string `json:"dueDate,omitempty"`
	Ransomware string `json:"knownRansomwareCampaignUse,omitempty"`
	Action     string `json:"requiredAction,omitempty"`
}

// KEVCatalog is a parsed catalog.
type KEVCatalog struct {
	Title   string `json:"title"`
	Version string `json:"catalogVersion"`
	Entries []KEV  `json:"vulnerabilities"`
}

var (
	cvePattern  = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)
	datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// ParseKEV parses the KEV catalog JSON (known_exploited_vulnerabilities.json). EINVALID for
// what is not one: no entries, an entry without a CVE id or its dateAdded.
func ParseKEV(data []byte) (KEVCatalog, error) {
	if len(data) > MaxKEVBytes {
		return KEVCatalog{}, vitalgate.Errorf(vitalgate.EINVALID, "the KEV catalog is over %d MiB", MaxKEVBytes>>20)
	}
	var c KEVCatalog
	if err := json.Unmarshal(data, &c); err != nil {
		return KEVCatalog{}, vitalgate.Errorf(vitalgate.EINVALID, "not the KEV catalog JSON: %v", err)
	}
	if len(c.Entries) == 0 {
		return KEVCatalog{}, vitalgate.Errorf(vitalgate.EINVALID, "the KEV catalog lists no vulnerabilities: give known_exploited_vulnerabilities.json")
	}
	for i, e := range c.Entries {
		if !cvePattern.MatchString(e.CVE) {
			return KEVCatalog{}, vitalgate.Errorf(vitalgate.EINVALID, "KEV entry %d: cveID %q is not a CVE id", i+1, e.CVE)
		}
		if !datePattern.MatchString(e.DateAdded) || (e.DueDate != "" && !datePattern.MatchString(e.DueDate)) {
			return KEVCatalog{}, vitalgate.Errorf(vitalgate.EINVALID, "KEV entry %s: dateAdded and dueDate are YYYY-MM-DD", e.CVE)
		}
	}
	return c, nil
}
