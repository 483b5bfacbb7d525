// Package deploy holds Vitalgate's deployment artifacts: the hardened systemd unit
// (vitalgate.service) and the container image definition (Containerfile, FROM scratch with
// the static binary). Its tests check them: the unit's systemd-analyze exposure, the image's
// non-root user, volume and absence of anything but the binary.
package deploy
