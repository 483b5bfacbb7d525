package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"runtime/debug"
	"time"
)

// SPDXDocument is an SPDX 2.3 JSON document (the subset Vitalgate writes).
type SPDXDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      SPDXCreationInfo   `json:"creationInfo"`
	DocumentDescribes []string           `json:"documentDescribes"`
	Packages          []SPDXPackage      `json:"packages"`
	Relationships     []SPDXRelationship `json:"relationships"`
}

// SPDXCreationInfo says who made the document and when.
type SPDXCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

// SPDXPackage is one package (a Go module, the standard library or the binary itself).
type SPDXPackage struct {
	Name             string            `json:"name"`
	SPDXID           string            `json:"SPDXID"`
	VersionInfo      string            `json:"versionInfo,omitempty"`
	Supplier         string            `json:"supplier"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	Checksums        []SPDXChecksum    `json:"checksums,omitempty"`
	LicenseConcluded string            `json:"licenseConcluded"`
	LicenseDeclared  string            `json:"licenseDeclared"`
	CopyrightText    string            `json:"copyrightText"`
	PrimaryPurpose   string            `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs     []SPDXExternalRef `json:"externalRefs"`
}

// SPDXChecksum is a package checksum.
type SPDXChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

// SPDXExternalRef is a package's external reference (its purl).
type SPDXExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

// SPDXRelationship relates two SPDX elements.
type SPDXRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

// spdxIDChars are the characters an SPDX identifier may not contain.
var spdxIDChars = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// spdxID makes an SPDX element id from a purl.
func spdxID(purl string) string { return "SPDXRef-" + spdxIDChars.ReplaceAllString(purl, "-") }

// SPDX builds an SPDX 2.3 document with the same content as CycloneDX: the binary's main
// module, the Go standard library and every linked module, each with supplier, version,
// purl and checksum; the document describes the main module, which DEPENDS_ON the rest.
// The document namespace is derived from a SHA-256 of the content, so the same binary and
// timestamp give the same document.
func SPDX(bi *debug.BuildInfo, opts Options) (*SPDXDocument, error) {
	bom, err := CycloneDX(bi, opts)
	if err != nil {
		return nil, err
	}
	mainC := bom.Metadata.Component
	pkgOf := func(c Component) SPDXPackage {
		p := SPDXPackage{
			Name: c.Name, SPDXID: spdxID(c.PURL), VersionInfo: c.Version,
			Supplier: "NOASSERTION", DownloadLocation: "NOASSERTION",
			LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
			ExternalRefs: []SPDXExternalRef{{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: c.PURL}},
		}
		if c.Supplier != nil {
			p.Supplier = "Organization: " + c.Supplier.Name
		}
		for _, h := range c.Hashes {
			if h.Alg == "SHA-256" {
				p.Checksums = append(p.Checksums, SPDXChecksum{Algorithm: "SHA256", ChecksumValue: h.Content})
			}
		}
		return p
	}
	root := pkgOf(mainC)
	root.PrimaryPurpose = "APPLICATION"
	doc := &SPDXDocument{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name: mainC.Name + "@" + mainC.Version,
		CreationInfo: SPDXCreationInfo{
			Created:  opts.Now.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: vitalgate-" + bom.Metadata.Tools.Components[0].Version, "Organization: " + Producer},
		},
		DocumentDescribes: []string{root.SPDXID},
		Packages:          []SPDXPackage{root},
		Relationships:     []SPDXRelationship{{SPDXElementID: "SPDXRef-DOCUMENT", RelationshipType: "DESCRIBES", RelatedSPDXElement: root.SPDXID}},
	}
	h := sha256.New()
	h.Write([]byte(doc.CreationInfo.Created + "\n" + root.ExternalRefs[0].ReferenceLocator + "\n"))
	for _, c := range bom.Components {
		p := pkgOf(c)
		p.PrimaryPurpose = "LIBRARY"
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, SPDXRelationship{SPDXElementID: root.SPDXID, RelationshipType: "DEPENDS_ON", RelatedSPDXElement: p.SPDXID})
		h.Write([]byte(c.PURL + " " + c.Version + "\n"))
	}
	doc.DocumentNamespace = "https://spdx.vitalgate.example/" + spdxIDChars.ReplaceAllString(doc.Name, "-") + "-" + hex.EncodeToString(h.Sum(nil))[:32]
	return doc, nil
}
