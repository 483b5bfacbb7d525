package fhir

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/vitalgate/vitalgate"
)

// Bundle link relations used in search results.
const (
	LinkSelf = "self"
	LinkNext = "next"
)

// BundleLink is a link of a Bundle, such as the self and next links of a searchset.
type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// SearchSet is a Bundle of type searchset: the result of a search, for output only. It
// marshals as {"resourceType":"Bundle","type":"searchset",...}.
type SearchSet struct {
	ID        string
	Meta      *Meta
	Timestamp string // optional FHIR instant
	Total     *int   // number of matches in all pages, if known
	Link      []BundleLink
	Entry     []SearchEntry
}

// SearchEntry is one entry of a SearchSet: a matching resource as FHIR JSON.
type SearchEntry struct {
	FullURL  string             `json:"fullUrl,omitempty"`
	Resource json.RawMessage    `json:"resource"`
	Search   *BundleEntrySearch `json:"search,omitempty"`
}

// BundleEntrySearch says why an entry is in a SearchSet.
type BundleEntrySearch struct {
	Mode string `json:"mode,omitempty"` // match | include | outcome
}

// NewSearchSet returns a searchset with a self link, a next link unless next is "", and one
// entry of search mode "match" per resource, in order (an OperationOutcome, a note about
// the search, gets mode "outcome"). Each resource must be a JSON object
// with resourceType and id (as the Marshal methods of this package produce); its fullUrl is
// base + "/" + resourceType + "/" + id, where base is the absolute FHIR base URL without a
// trailing slash (for example "https://host:8443/fhir"), or none if base is "". A resource
// without resourceType or id is a bug in the caller: the error is EINTERNAL.
func NewSearchSet(base, self, next string, resources []json.RawMessage) (*SearchSet, error) {
	s := &SearchSet{Link: []BundleLink{{Relation: LinkSelf, URL: self}}, Entry: make([]SearchEntry, len(resources))}
	if next != "" {
		s.Link = append(s.Link, BundleLink{Relation: LinkNext, URL: next})
	}
	base = strings.TrimSuffix(base, "/")
	for i, r := range resources {
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if err := json.Unmarshal(r, &head); err != nil {
			return nil, vitalgate.Internal(err, "fhir: searchset resource is not a JSON object")
		}
		if !resourceTypeName.MatchString(head.ResourceType) || !idRE.MatchString(head.ID) {
			return nil, vitalgate.Internal(errMissingID, "fhir: searchset resource")
		}
		mode := "match"
		if head.ResourceType == "OperationOutcome" {
			mode = "outcome" // a note about the search, not a match (FHIR R4 Bundle.entry.search.mode)
		}
		s.Entry[i] = SearchEntry{Resource: r, Search: &BundleEntrySearch{Mode: mode}}
		if base != "" {
			s.Entry[i].FullURL = base + "/" + head.ResourceType + "/" + head.ID
		}
	}
	return s, nil
}

var errMissingID = errors.New("resource has no well-formed resourceType and id")

// MarshalJSON encodes s as a FHIR Bundle of type searchset, resourceType first.
func (s SearchSet) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ResourceType string        `json:"resourceType"`
		ID           string        `json:"id,omitempty"`
		Meta         *Meta         `json:"meta,omitempty"`
		Type         string        `json:"type"`
		Timestamp    string        `json:"timestamp,omitempty"`
		Total        *int          `json:"total,omitempty"`
		Link         []BundleLink  `json:"link,omitempty"`
		Entry        []SearchEntry `json:"entry,omitempty"`
	}{"Bundle", s.ID, s.Meta, "searchset", s.Timestamp, s.Total, s.Link, s.Entry})
}

// Marshal returns s as compact FHIR JSON.
func (s *SearchSet) Marshal() ([]byte, error) { return json.Marshal(s) }
