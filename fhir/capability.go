package fhir

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// FHIRVersion is the FHIR version Vitalgate speaks.
const FHIRVersion = "4.0.1"

// Identifiers used in the CapabilityStatement's security section.
const (
	// SystemRestfulSecurityService is the code system of CapabilityStatement.rest.security.service.
	SystemRestfulSecurityService = "http://terminology.hl7.org/CodeSystem/restful-security-service"
	// ExtensionOAuthURIs is the SMART App Launch extension that carries the OAuth2 endpoints.
	ExtensionOAuthURIs = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
)

// Extension is a FHIR extension, used only on output (the decoder rejects extensions): either
// a valueUri or nested extensions.
type Extension struct {
	URL       string      `json:"url"`
	Extension []Extension `json:"extension,omitempty"`
	ValueURI  string      `json:"valueUri,omitempty"`
}

// CapabilityStatement is a FHIR R4 CapabilityStatement describing this server instance
// (GET /fhir/metadata). Build it with NewCapabilityStatement.
type CapabilityStatement struct {
	Status         string                    `json:"status"` // active
	Date           string                    `json:"date"`
	Kind           string                    `json:"kind"` // instance
	Software       *CapabilitySoftware       `json:"software,omitempty"`
	Implementation *CapabilityImplementation `json:"implementation,omitempty"`
	FHIRVersion    string                    `json:"fhirVersion"`
	Format         []string                  `json:"format"`
	Rest           []CapabilityRest          `json:"rest,omitempty"`
}

// CapabilitySoftware names the server software.
type CapabilitySoftware struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// CapabilityImplementation describes the instance (required when kind is instance, cpb-15).
type CapabilityImplementation struct {
	Description string `json:"description"`
	URL         string `json:"url,omitempty"`
}

// CapabilityRest is the server's RESTful capabilities.
type CapabilityRest struct {
	Mode        string                  `json:"mode"` // server
	Security    *CapabilitySecurity     `json:"security,omitempty"`
	Resource    []CapabilityResource    `json:"resource,omitempty"`
	Interaction []CapabilityInteraction `json:"interaction,omitempty"` // system-wide: batch, transaction...
}

// CapabilitySecurity describes how clients authenticate.
type CapabilitySecurity struct {
	Extension   []Extension       `json:"extension,omitempty"`
	Service     []CodeableConcept `json:"service,omitempty"`
	Description string            `json:"description,omitempty"`
}

// CapabilityResource is what the server supports for one resource type.
type CapabilityResource struct {
	Type        string                  `json:"type"`
	Interaction []CapabilityInteraction `json:"interaction,omitempty"`
	SearchParam []CapabilitySearchParam `json:"searchParam,omitempty"`
}

// CapabilityInteraction is one supported interaction (read, vread, search-type, create...).
type CapabilityInteraction struct {
	Code string `json:"code"`
}

// CapabilitySearchParam is one supported search parameter.
type CapabilitySearchParam struct {
	Name          string `json:"name"`
	Type          string `json:"type"` // number | date | string | token | reference | composite | quantity | uri | special
	Documentation string `json:"documentation,omitempty"`
}

// ResourceCapability lists what the server supports for one resource type, as input to
// NewCapabilityStatement (for example from the route table).
type ResourceCapability struct {
	Type         string                  // e.g. "Observation"
	Interactions []string                // e.g. "read", "search-type", "create"
	SearchParams []CapabilitySearchParam // e.g. {Name: "patient", Type: "reference"}
}

// CapabilityOptions are the inputs of NewCapabilityStatement.
type CapabilityOptions struct {
	SoftwareName    string    // e.g. "Vitalgate"
	SoftwareVersion string    // e.g. the build version; may be ""
	Date            time.Time // when the statement was last changed (e.g. the build or start time)
	Description     string    // implementation description; "" gives SoftwareName
	BaseURL         string    // the instance's FHIR base URL, e.g. "https://host:8443/fhir"; may be ""
	TokenURL        string    // the OAuth2 token endpoint; "" omits the oauth-uris extension
	// Resources are the supported resource types; they are listed sorted by Type.
	Resources []ResourceCapability
	// SystemInteractions are whole-system interactions, e.g. "batch", "transaction".
	SystemInteractions []string
}

// NewCapabilityStatement returns a CapabilityStatement of kind instance, status active,
// fhirVersion FHIRVersion and format json, with one rest entry in mode server whose security
// names the SMART-on-FHIR service and, if opt.TokenURL is set, carries the SMART oauth-uris
// extension with the token URL.
func NewCapabilityStatement(opt CapabilityOptions) *CapabilityStatement {
	desc := opt.Description
	if desc == "" {
		desc = opt.SoftwareName
	}
	cs := &CapabilityStatement{
		Status:         "active",
		Date:           opt.Date.UTC().Format(time.RFC3339),
		Kind:           "instance",
		Software:       &CapabilitySoftware{Name: opt.SoftwareName, Version: opt.SoftwareVersion},
		Implementation: &CapabilityImplementation{Description: desc, URL: opt.BaseURL},
		FHIRVersion:    FHIRVersion,
		Format:         []string{"json"},
	}
	sec := &CapabilitySecurity{
		Service: []CodeableConcept{{
			Coding: []Coding{{System: SystemRestfulSecurityService, Code: "SMART-on-FHIR", Display: "SMART-on-FHIR"}},
			Text:   "OAuth2 bearer tokens with SMART v2 scopes",
		}},
	}
	if opt.TokenURL != "" {
		sec.Extension = []Extension{{
			URL:       ExtensionOAuthURIs,
			Extension: []Extension{{URL: "token", ValueURI: opt.TokenURL}},
		}}
	}
	rest := CapabilityRest{Mode: "server", Security: sec}
	for _, r := range opt.Resources {
		cr := CapabilityResource{Type: r.Type, SearchParam: slices.Clone(r.SearchParams)}
		for _, code := range r.Interactions {
			cr.Interaction = append(cr.Interaction, CapabilityInteraction{Code: code})
		}
		rest.Resource = append(rest.Resource, cr)
	}
	slices.SortStableFunc(rest.Resource, func(a, b CapabilityResource) int { return strings.Compare(a.Type, b.Type) })
	for _, code := range opt.SystemInteractions {
		rest.Interaction = append(rest.Interaction, CapabilityInteraction{Code: code})
	}
	cs.Rest = []CapabilityRest{rest}
	return cs
}

// MarshalJSON encodes cs with resourceType first.
func (cs CapabilityStatement) MarshalJSON() ([]byte, error) {
	type plain CapabilityStatement
	return json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		plain
	}{"CapabilityStatement", plain(cs)})
}

// Marshal returns cs as compact FHIR JSON.
func (cs *CapabilityStatement) Marshal() ([]byte, error) { return json.Marshal(cs) }
