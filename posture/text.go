package posture

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes the report in plain words, as `vitalgate posture` prints it.
func WriteText(w io.Writer, r Report) error {
	var b strings.Builder
	s := r.Summary
	fmt.Fprintf(&b, "Vulnerability posture at %s\n", r.GeneratedAt.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Imported: %d advisories, %d KEV entries.\n", s.Advisories, s.KEVEntries)
	fmt.Fprintf(&b, "Fleet: %d models (%d with an SBOM for every version in the field), %d devices (%d with an SBOM), %d affected: %d open findings, %d known exploited open.\n",
		s.Models, s.ModelsWithSBOM, s.Devices, s.DevicesWithSBOM, s.DevicesAffected, s.OpenFindings, s.OpenKEV)
	for _, m := range r.Models {
		fmt.Fprintf(&b, "\nModel %s\n", m.Model)
		for _, v := range m.Versions {
			writeVersion(&b, v, "  ", true)
		}
		if len(m.Devices) > 0 {
			b.WriteString("  Devices:\n")
		}
		for _, d := range m.Devices {
			switch {
			case d.Version == "":
				fmt.Fprintf(&b, "    %s: no version reported yet (posture unknown)\n", d.ID)
			case d.NoSBOM:
				fmt.Fprintf(&b, "    %s %s: no SBOM for this version (posture unknown): attach one with vitalgate posture sbom add\n", d.ID, d.Version)
			case len(d.Findings) == 0:
				fmt.Fprintf(&b, "    %s %s: no open vulnerability\n", d.ID, d.Version)
			default:
				fmt.Fprintf(&b, "    %s %s: %d open\n", d.ID, d.Version, len(d.Findings))
				for _, f := range d.Findings {
					line := fmt.Sprintf("      %s %s", f.ID, f.Component)
					if f.KEV != "" {
						line += " [KEV " + f.KEV + "]"
					}
					if f.FixVersion != "" {
						state := "not published yet"
						if f.FixLive {
							state = "published"
						}
						line += fmt.Sprintf("; fixed by %s (%s)", f.FixVersion, state)
					}
					fmt.Fprintf(&b, "%s; open %d days (since %s)\n", line, f.OpenDays, f.OpenSince.Format("2006-01-02"))
				}
			}
		}
	}
	if r.Server != nil {
		b.WriteString("\nThis server (Vitalgate's own SBOM)\n")
		writeVersion(&b, *r.Server, "  ", false)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeVersion writes a version's posture; fleet: a device model's version (with its
// release and devices), else this server.
func writeVersion(b *strings.Builder, v VersionPosture, ind string, fleet bool) {
	if !fleet && v.SBOM != nil {
		fmt.Fprintf(b, "%sVitalgate %s: SBOM %s, %d components\n", ind, v.Version, v.SBOM.Format, v.SBOM.Components)
	}
	if v.SBOM == nil {
		fmt.Fprintf(b, "%sVersion %s (release %s, %d devices): no SBOM; attach one with vitalgate posture sbom add --model %s --version %s FILE\n",
			ind, v.Version, v.Release, v.Devices, v.Model, v.Version)
		return
	}
	if fleet {
		fmt.Fprintf(b, "%sVersion %s (release %s, %d devices): SBOM %s, %d components, from %s\n",
			ind, v.Version, v.Release, v.Devices, v.SBOM.Format, v.SBOM.Components, v.SBOM.Source)
	}
	if len(v.SBOM.Missing) > 0 {
		parts := make([]string, 0, len(v.SBOM.Missing))
		for _, m := range v.SBOM.Missing {
			parts = append(parts, fmt.Sprintf("%s %d", m.Field, m.Components))
		}
		fmt.Fprintf(b, "%s  Components lacking a field: %s\n", ind, strings.Join(parts, ", "))
	}
	for _, u := range v.Unmatched {
		fmt.Fprintf(b, "%s  Not matched: %s: %s\n", ind, u.Component, strings.Join(u.Missing, "; "))
	}
	if len(v.Findings) == 0 {
		fmt.Fprintf(b, "%s  No known vulnerability.\n", ind)
	}
	for _, f := range v.Findings {
		line := fmt.Sprintf("%s  %s %s %s", ind, f.ID, f.Component, f.Version)
		if f.KEV != nil {
			line += fmt.Sprintf(" [KEV %s via %s: added %s, due %s, ransomware %s]", f.KEV.CVE, f.KEV.Via, f.KEV.DateAdded, f.KEV.DueDate, f.KEV.Ransomware)
		}
		fmt.Fprintln(b, line)
		var details []string
		if f.Summary != "" {
			details = append(details, f.Summary)
		}
		for _, sv := range f.Severity {
			details = append(details, sv.Type+" "+sv.Score)
		}
		if f.Rating != "" {
			details = append(details, "rated "+f.Rating)
		}
		if f.FixedIn != "" {
			details = append(details, "fixed in "+f.FixedIn)
		} else {
			details = append(details, "no fixed version known")
		}
		if f.VEX != nil {
			vx := "VEX " + f.VEX.Status
			if f.VEX.Justification != "" {
				vx += " (" + f.VEX.Justification + ")"
			}
			details = append(details, vx)
		}
		if f.Fix != nil {
			fx := "cleared by version " + f.Fix.Version
			if f.Fix.Published {
				fx += ", published"
			} else {
				fx += ", not published yet"
			}
			if p := f.Fix.Rollout; p != nil {
				fx += fmt.Sprintf(", rollout %s %d/%d (%d%%)", p.State, p.Installed, p.Targeted, p.Percent)
			}
			details = append(details, fx)
		}
		if f.Open {
			details = append(details, fmt.Sprintf("open %d days", f.OpenDays))
		} else {
			details = append(details, "not open")
		}
		fmt.Fprintf(b, "%s    %s\n", ind, strings.Join(details, "; "))
	}
}
