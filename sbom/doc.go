// Package sbom describes a Vitalgate binary as a software bill of materials: a CycloneDX
// 1.5 JSON document (and, optionally, SPDX 2.3 JSON) built from the module information the
// Go linker embeds in every binary (runtime/debug.BuildInfo).
//
// The documents carry the NTIA minimum elements: for every component its supplier name,
// name, version and a unique identifier (a package URL, pkg:golang/PATH@VERSION); the
// dependency relationship (the main module depends on every linked module, which is what
// build info records: it has no edges between dependencies); the author of the SBOM data
// and a timestamp.
//
// Components are the main module (an application), every dependency module linked into the
// binary (libraries, scope required, with replacements resolved) and the Go standard
// library of the toolchain that built it (pkg:golang/std@VERSION), since the runtime and
// standard library are compiled into the binary and have their own vulnerabilities.
//
// Hashes: a module's go.sum hash "h1:BASE64" is the SHA-256 (dirhash Hash1,
// golang.org/x/mod/sumdb/dirhash) over the sorted list of the SHA-256 sums of the module's
// files. It is recorded as CycloneDX alg "SHA-256" (SPDX "SHA256") with the hex encoding of
// the decoded hash. It is therefore not the hash of a downloaded zip: verify it with
// `go mod verify` or against the checksum database (sum.golang.org), not with sha256sum.
//
// Suppliers: Go modules have no supplier field, so the supplier is derived from the module
// path: the owner on well-known code hosts (github.com/google → "google (github.com)"), "The
// Go Authors" for golang.org/x, otherwise the host name (modernc.org).
package sbom
