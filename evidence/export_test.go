package evidence

import "sort"

// ProbeIDs returns the ids of the controls that have a live-state probe.
func ProbeIDs() []string {
	ids := make([]string, 0, len(probes))
	for id := range probes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Probe runs the live-state probe of control id on s.
func Probe(id string, s *State) Finding { return probes[id](s) }
