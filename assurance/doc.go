// Package assurance holds no production code: its tests enforce Vitalgate's own
// engineering rules on the whole module, so that a change which breaks one fails CI with a
// plain message naming the rule and the offender.
//
// The rules (each a test in this package, each with a companion test proving that the
// checker catches a small bad example):
//
//   - Pure Go: the product builds with CGO_ENABLED=0; no package of ours imports "unsafe"
//     or "C"; a dependency of the binary may import "unsafe" only if it is listed, with a
//     reason, in the vetted table (TestNoUnsafe).
//   - Layering (DESIGN.md §2): the root package imports only the standard library; pure
//     packages (fhir, hl7v2, vitals, seal, pcd01, audit) import no transport, no store and
//     neither net/http nor database/sql; transports (httpapi, mllp) never import a store;
//     stores (sqlite, postgres) never import a transport; nothing imports cmd/...; only
//     cmd/vitalgate and the assembly it runs (node, bench) import both a store and a
//     transport (TestImportRules). Test code is
//     exempt: the rules are about what ships.
//   - Every package has a package doc comment (TestPackageDocs).
//   - SQL only from constants: in the store packages every Exec/Query/QueryRow/Prepare
//     (and their Context forms, and pgx's Queue) gets a constant SQL string
//     (TestSQLIsConstant).
//   - Secrets are never logged: no log or log/slog call passes a value whose name contains
//     "secret", "password", "passwd" or "token" (TestNoSecretsLogged).
//
// The tests run `go list` and `go build`, so they need the go command on PATH; they take a
// few seconds. Run them alone with `go test ./assurance`.
package assurance
