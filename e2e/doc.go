// Package e2e holds end-to-end tests of the built vitalgate binary: they build it, run its
// commands as a user would (init, serve, device add, export, keys rotate), enroll devices with
// real CSRs over EST, post over real mutual TLS, kill the server with SIGKILL, and inspect the
// data dir. It has no non-test code.
package e2e
