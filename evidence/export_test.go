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
