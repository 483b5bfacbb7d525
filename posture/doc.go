// Package posture is the fleet vulnerability posture capability (FDA 524B(b)(1),(b)(3); the
// premarket cybersecurity guidance §V.A.4): the SBOM of each device model's software
// version, offline advisories (OSV), the CISA catalog of known exploited vulnerabilities
// (KEV) and the makers' VEX statements, matched against each other and tied to the devices
// in the field (the versions they report) and to the releases and rollouts that fix them.
//
// Parsers: CycloneDX 1.5/1.6 JSON and SPDX 2.3 JSON SBOMs (nested components flattened;
// a component without a purl or a version is reported, never dropped; the FDA fields
// supplier, support level and end-of-support date kept or reported missing), OSV JSON
// (schema 1.7) from a file, a directory or a ZIP archive, the KEV catalog JSON, and
// CycloneDX VEX or OpenVEX.
//
// Matching: a component's identity comes from its purl (github.com/package-url/packageurl-go)
// or, for components known only by a CPE or a pkg:github purl (embedded C libraries), from
// the alias table (aliases.go), which names their source repository and, where one exists,
// their package in an OSV ecosystem. SEMVER and ECOSYSTEM ranges are evaluated in each
// ecosystem's own version order (github.com/google/osv-scalibr/semantic, with its semver
// order as the fallback for ecosystems it does not know); GIT ranges through the
// advisory's versions[] list (tags), against the repository the component comes from.
//
// Everything is read from the store at each report; nothing is written by a read. An
// import or an SBOM attachment is one store write with its audit entry (type "posture";
// no patient data is involved).
package posture
