// Package backup is Vitalgate's backup, restore and disaster recovery: the recovery key pair
// (HPKE, RFC 9180, with DHKEM(P-256), HKDF-SHA-256 and AES-256-GCM from Go's crypto/hpke, all
// FIPS 140-3 approved), the backup file (a tar stream of a consistent database snapshot and
// the data dir's keys and configuration, encrypted to the recovery public key in sealed
// chunks, so that nothing holds the whole database in memory), the manifest that the audit
// key signs (table counts, the audit tree's size and root, a checkpoint of it, the digest of
// every file), erasure tombstones (signed, append-only, replayed by a restore so that a
// patient erased after a backup stays erased), and the restore itself: unpack into a new
// data dir, verify, replay tombstones, and open a new audit log epoch (package audit,
// VerifyEpochs) whose first entry records the restore (on PostgreSQL, after the operator
// restored the database with its own tools: DatabaseAnchor). It also archives the audit log
// (Archive): the oldest entries move into segment files sealed the same way (WriteSegment,
// OpenSegment), kept for a retention, while the store keeps their leaf hashes.
//
// The package does no SQL: the stores give it a snapshot and counts (Snapshotter,
// SnapshotDB, Shredder), package node the data dir's file list, and cmd/vitalgate wires them.
package backup
