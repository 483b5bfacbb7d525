// Package bench measures Vitalgate's performance the way the project states it: as figures
// next to a baseline measured in the same run, on the same machine, with the same clients,
// and as the ratio of the two. Absolute numbers depend on the machine; the ratio says how
// much of what the machine can do (TLS, the store, SHA-256) Vitalgate's own work keeps.
//
// The package holds the measurement machinery only: a closed-loop load driver ([Load]) that
// records every request's latency, latency statistics ([Summary], [Percentile]), result rows
// with their baseline and target ([Row], [Target]), the run's [Report] and its renderings
// (an aligned text table, CSV, JSON and an SVG bar chart of the ratios), and a description
// of the machine ([Machine]), and the scenarios of `vitalgate bench` with their driver
// ([Run], [Options], [Scenarios]): they start the real server (package node) on a
// temporary data dir and drive it with real clients; the command only parses the flags.
//
// Nothing here asserts a timing: targets are reported as met or not, never enforced in tests.
// The Go benchmarks of the hot paths (decode and validate, seal, store commit, audit append)
// are in hotpaths_test.go: go test -run '^$' -bench . ./bench/
package bench
