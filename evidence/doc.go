// Package evidence generates the regulatory evidence report of a live deployment: for each
// FDA premarket-guidance security control category (§V.B.1) and each HIPAA 164.312 standard
// and implementation specification, the controls Vitalgate implements, their state on this
// deployment (read from the data dir and from the effective configuration every `serve`
// records in the store), the tests that prove them, and the gaps, stated as gaps. The report
// also carries the SBOM, the interfaces and their authentication, a STRIDE threat model per
// interface, the four architecture views of §V.B.2 as SVG, an audit-volume chart, and, when
// given, the results of `vitalgate assess` and of audit verification. A second output answers
// the MDS2 (2019) form.
//
// The catalogue is data: catalogue.json lists the requirements and the controls (which
// requirements each meets, which tests prove it, or the gap it leaves), threats.json the
// interfaces and their threats, mds2.json the MDS2 questions. A capability that lands later
// adds its control entry to catalogue.json and, when the control has live state, a probe of
// the same id in probes.go; the package tests check that every entry has one and that every
// named test exists.
//
// Reports are reproducible (the same inputs give the same bytes apart from the generation
// time) and signed with an Ed25519 key kept in the data dir; Verify checks a report file.
package evidence
