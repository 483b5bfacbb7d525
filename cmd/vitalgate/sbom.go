package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/vitalgate/vitalgate/sbom"
)

// runSBOM prints a software bill of materials of this binary to standard output: CycloneDX
// 1.5 JSON by default, SPDX 2.3 JSON with --format spdx. It is built from the module
// information the Go linker embedded in the binary, so it lists exactly what was linked.
func (m *Main) runSBOM(ctx context.Context, args []string) error {
	fs := m.flags("sbom", "sbom [--format cyclonedx|spdx]")
	format := fs.String("format", "cyclonedx", "output format: cyclonedx (CycloneDX 1.5 JSON) or spdx (SPDX 2.3 JSON)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("this binary carries no build information (built without module support)")
	}
	opts := sbom.Options{Now: m.Now()}
	switch *format {
	case "cyclonedx":
		opts.Serial = "urn:uuid:" + uuid4()
		bom, err := sbom.CycloneDX(bi, opts)
		if err != nil {
			return err
		}
		return sbom.WriteJSON(m.Stdout, bom)
	case "spdx":
		doc, err := sbom.SPDX(bi, opts)
		if err != nil {
			return err
		}
		return sbom.WriteJSON(m.Stdout, doc)
	}
	fmt.Fprintf(m.Stderr, "unknown --format %q (want cyclonedx or spdx)\n", *format)
	fs.Usage()
	return errUsage
}

// uuid4 returns a random (version 4) UUID from crypto/rand.
func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
