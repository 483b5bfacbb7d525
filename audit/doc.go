// Package audit is Vitalgate's tamper-evident audit trail: what an audit entry holds and how it
// is encoded, the RFC 6962 / RFC 9162 Merkle tree over the entries, inclusion and consistency
// proofs, checkpoints signed in the C2SP signed-note format (https://c2sp.org/signed-note,
// https://c2sp.org/tlog-checkpoint), offline verification of a whole stored log, RFC 5424
// syslog messages and their RFC 5425 frames (package outbox sends them to a SIEM), and the
// folding of repeated refusals (Log).
//
// The package is pure: standard library only (plus the root package for error codes), no
// storage, no transport, no network or file I/O (assurance checks its imports); key files
// are read and written by cmd, forwarding is package outbox, search and proofs for auditors
// are package auditquery. A store hands it entry bytes and leaf hashes through the small
// interfaces LeafSource and EntrySource (StoreLog adapts a vitalgate.AuditStore to both); the
// HTTP layer serves what ProveInclusion, ProveConsistency and SignCheckpoint return.
//
// # The log
//
// Entry i of the log is the canonical JSON encoding of an Entry (Entry.Marshal). Its leaf hash
// is SHA-256(0x00 || bytes) and the tree head over the first n leaves is the RFC 6962 Merkle
// Tree Hash. Entries never hold clinical values or plaintext patient identifiers: a patient is
// named only by a hex blind index.
//
// # Checkpoints
//
// A checkpoint commits to the first n entries:
//
//	vitalgate.example/audit
//	1024
//	<base64 root hash>
//
//	— vitalgate.example/audit <base64(key id || Ed25519 signature)>
//
// An auditor who holds only the verifier key (Verifier.String, a single line such as
// "vitalgate.example/audit+1a2b3c4d+AXdr...") can check any checkpoint, any proof and, with
// Verify, the whole log: changed, deleted, inserted or reordered entries and truncation behind a
// checkpoint kept elsewhere (a witness copy) are all detected.
package audit
