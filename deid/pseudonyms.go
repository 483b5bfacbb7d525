package deid

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// Pseudonyms is the re-identification mapping of de-identified exports: for every
// identifier replaced, the random code that replaced it, and for every patient the random
// date offset. Codes are drawn at random (never derived from what they replace, as 45 CFR
// 164.514(c) requires), so the mapping is the only way back; exports that share a mapping
// give the same codes to the same identifiers. The mapping is itself protected
// information: keep it sealed (the export command seals it under the data dir's keys) and
// never hand it over with the export.
//
// A Pseudonyms is not safe for concurrent use.
type Pseudonyms struct {
	resources   map[string]string // "Patient/123" → code (the new id)
	identifiers map[string]string // system + "|" + value → code
	uuids       map[string]string // urn:uuid:... → urn:uuid:random
	offsets     map[string]int    // "Patient/123" → days
	used        map[string]bool   // every code handed out
	rand        io.Reader
}

// NewPseudonyms returns an empty mapping.
func NewPseudonyms() *Pseudonyms {
	return &Pseudonyms{resources: map[string]string{}, identifiers: map[string]string{}, uuids: map[string]string{},
		offsets: map[string]int{}, used: map[string]bool{}}
}

// Len returns how many codes the mapping holds.
func (p *Pseudonyms) Len() int { return len(p.resources) + len(p.identifiers) + len(p.uuids) }

// mappingJSON is the serialized form of a Pseudonyms.
type mappingJSON struct {
	Format      string            `json:"format"`
	Resources   map[string]string `json:"resources"`
	Identifiers map[string]string `json:"identifiers"`
	UUIDs       map[string]string `json:"uuids,omitempty"`
	Offsets     map[string]int    `json:"date_offsets_days,omitempty"`
}

const mappingFormat = "vitalgate-deid-pseudonyms-1"

// MarshalJSON encodes the mapping (original → code), for sealing.
func (p *Pseudonyms) MarshalJSON() ([]byte, error) {
	return json.Marshal(mappingJSON{Format: mappingFormat, Resources: p.resources, Identifiers: p.identifiers,
		UUIDs: p.uuids, Offsets: p.offsets})
}

// UnmarshalJSON decodes a mapping written by MarshalJSON.
func (p *Pseudonyms) UnmarshalJSON(b []byte) error {
	var m mappingJSON
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("deid: pseudonyms: %w", err)
	}
	if m.Format != mappingFormat {
		return fmt.Errorf("deid: pseudonyms: format %q, want %q", m.Format, mappingFormat)
	}
	q := NewPseudonyms()
	for dst, src := range map[*map[string]string]map[string]string{&q.resources: m.Resources, &q.identifiers: m.Identifiers, &q.uuids: m.UUIDs} {
		for k, v := range src {
			if v == "" || q.used[v] {
				return fmt.Errorf("deid: pseudonyms: empty or repeated code")
			}
			(*dst)[k] = v
			q.used[v] = true
		}
	}
	for k, v := range m.Offsets {
		if v == 0 || v < -maxOffsetDays || v > maxOffsetDays {
			return fmt.Errorf("deid: pseudonyms: date offset %d out of range", v)
		}
		q.offsets[k] = v
	}
	*p = *q
	return nil
}

// codeEncoding writes codes as lower-case base32 without padding: valid FHIR ids.
var codeEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newCode returns a fresh random code of 128 bits (26 characters) that the mapping has not
// handed out before.
func (p *Pseudonyms) newCode() (string, error) {
	for range maxDraws {
		var b [16]byte
		if err := p.read(b[:]); err != nil {
			return "", err
		}
		c := codeEncoding.EncodeToString(b[:])
		if !p.used[c] {
			p.used[c] = true
			return c, nil
		}
	}
	return "", errRepeats
}

// maxDraws bounds the draws for one fresh code: 128-bit random codes do not repeat, so a
// source that keeps repeating is broken.
const maxDraws = 8

var errRepeats = fmt.Errorf("deid: the randomness source keeps repeating itself")

// newUUID returns a fresh random (version 4) UUID URN.
func (p *Pseudonyms) newUUID() (string, error) {
	for range maxDraws {
		var b [16]byte
		if err := p.read(b[:]); err != nil {
			return "", err
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		u := fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
		if !p.used[u] {
			p.used[u] = true
			return u, nil
		}
	}
	return "", errRepeats
}

func (p *Pseudonyms) read(b []byte) error {
	r := p.rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("deid: randomness: %w", err)
	}
	return nil
}

func (p *Pseudonyms) lookup(m map[string]string, key string, fresh func() (string, error)) (string, error) {
	if c, ok := m[key]; ok {
		return c, nil
	}
	c, err := fresh()
	if err != nil {
		return "", err
	}
	m[key] = c
	return c, nil
}

// resource returns the code (new id) of the resource typ/id.
func (p *Pseudonyms) resource(typ, id string) (string, error) {
	return p.lookup(p.resources, typ+"/"+id, p.newCode)
}

// identifier returns the code of the identifier system|value.
func (p *Pseudonyms) identifier(system, value string) (string, error) {
	return p.lookup(p.identifiers, system+"|"+value, p.newCode)
}

// uuid returns the random UUID URN that replaces urn.
func (p *Pseudonyms) uuid(urn string) (string, error) { return p.lookup(p.uuids, urn, p.newUUID) }

// maxOffsetDays bounds the date shift: up to a year either way, never 0.
const maxOffsetDays = 365

// offset returns the date shift in days of the patient (or other subject) key.
func (p *Pseudonyms) offset(key string) (int, error) {
	if d, ok := p.offsets[key]; ok {
		return d, nil
	}
	// Uniform in 1..2*maxOffsetDays by rejection sampling, then mapped to ±1..365.
	const n = 2 * maxOffsetDays
	const limit = 1<<16 - (1<<16)%n
	for range 64 * maxDraws {
		var b [2]byte
		if err := p.read(b[:]); err != nil {
			return 0, err
		}
		v := int(binary.BigEndian.Uint16(b[:]))
		if v >= limit {
			continue
		}
		d := v%n + 1 // 1..730
		if d > maxOffsetDays {
			d = maxOffsetDays - d // -1..-365
		}
		p.offsets[key] = d
		return d, nil
	}
	return 0, errRepeats
}
