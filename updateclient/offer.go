package updateclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// maxOfferBytes bounds the size of a GET /updates/offer answer the client reads.
const maxOfferBytes = 16 << 10

// maxReasonBytes bounds the reason sent with a report.
const maxReasonBytes = 1024

// Offer is the server's answer to GET /updates/offer: the approved release the device's
// rollout offers it. It is a hint only: the client acts on it only once its target verifies
// through TUF ([Client.Verify]).
type Offer struct {
	// Model is the device model the release is for.
	Model string `json:"model"`
	// Version is the release version.
	Version string `json:"version"`
	// Target is the TUF target path, MODEL/VERSION/FILENAME.
	Target string `json:"target"`
	// Critical marks an out-of-cycle release (a patch for a critical vulnerability).
	Critical bool `json:"critical"`
}

// ErrInvalidOffer is returned (wrapped) by [ParseOffer] for an offer that is not usable.
var ErrInvalidOffer = errors.New("updateclient: invalid update offer")

// ParseOffer decodes and checks the JSON body of a GET /updates/offer answer: one JSON object
// with a model, a version and a target path MODEL/VERSION/FILENAME whose first two segments
// are that model and version and whose file name is a plain name. Unknown fields are ignored
// (the server may add some), trailing data is not.
func ParseOffer(b []byte) (Offer, error) {
	var o Offer
	if len(b) > maxOfferBytes {
		return o, fmt.Errorf("%w: answer larger than %d bytes", ErrInvalidOffer, maxOfferBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&o); err != nil {
		return Offer{}, fmt.Errorf("%w: not a JSON offer object: %v", ErrInvalidOffer, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Offer{}, fmt.Errorf("%w: data after the offer object", ErrInvalidOffer)
	}
	if err := o.Validate(); err != nil {
		return Offer{}, err
	}
	return o, nil
}

// Validate reports whether o names a model, a version and a target path
// MODEL/VERSION/FILENAME made of those two and a plain file name.
func (o Offer) Validate() error {
	for _, f := range []struct{ name, v string }{{"model", o.Model}, {"version", o.Version}} {
		if err := checkSegment(f.v); err != nil {
			return fmt.Errorf("%w: %s %q: %v", ErrInvalidOffer, f.name, f.v, err)
		}
	}
	parts := strings.Split(o.Target, "/")
	if len(parts) != 3 {
		return fmt.Errorf("%w: target %q is not MODEL/VERSION/FILENAME", ErrInvalidOffer, o.Target)
	}
	if parts[0] != o.Model || parts[1] != o.Version {
		return fmt.Errorf("%w: target %q does not belong to model %q version %q", ErrInvalidOffer, o.Target, o.Model, o.Version)
	}
	if err := checkSegment(parts[2]); err != nil {
		return fmt.Errorf("%w: target file name %q: %v", ErrInvalidOffer, parts[2], err)
	}
	return nil
}

// checkSegment accepts one path segment: non-empty, at most 128 bytes, not "." or "..", no
// slash, backslash, space or control character.
func checkSegment(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > 128:
		return errors.New("is longer than 128 bytes")
	case s == "." || s == "..":
		return errors.New("is a relative path element")
	}
	for _, r := range s {
		if r == '/' || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("holds the character %q", r)
		}
	}
	return nil
}

// State is the outcome a device reports for a release with POST /updates/report.
type State string

// The states of the report contract.
const (
	StateDownloading State = "downloading"
	StateInstalled   State = "installed"
	StateHealthy     State = "healthy"
	StateFailed      State = "failed"
	StateRolledBack  State = "rolled-back"
)

// Report is the body of POST /updates/report.
type Report struct {
	Version string `json:"version"`
	State   State  `json:"state"`
	// Reason says why, for failed and rolled-back; it must not hold patient data.
	Reason string `json:"reason,omitempty"`
}

// Validate reports whether r has a version and one of the contract's states, and a reason
// of at most 1024 bytes.
func (r Report) Validate() error {
	if err := checkSegment(r.Version); err != nil {
		return fmt.Errorf("updateclient: report version %q: %v", r.Version, err)
	}
	switch r.State {
	case StateDownloading, StateInstalled, StateHealthy, StateFailed, StateRolledBack:
	default:
		return fmt.Errorf("updateclient: report state %q is not one of downloading, installed, healthy, failed, rolled-back", r.State)
	}
	if len(r.Reason) > maxReasonBytes {
		return fmt.Errorf("updateclient: report reason is longer than %d bytes", maxReasonBytes)
	}
	return nil
}

// operationOutcome is the part of a FHIR OperationOutcome the client shows.
type operationOutcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Diagnostics string `json:"diagnostics"`
		Details     struct {
			Text string `json:"text"`
		} `json:"details"`
	} `json:"issue"`
}

// Diagnostics returns the first issue's diagnostics (or details text) of a FHIR
// OperationOutcome, or "" when b is not one.
func Diagnostics(b []byte) string {
	var oo operationOutcome
	if json.Unmarshal(b, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		return ""
	}
	d := oo.Issue[0].Diagnostics
	if d == "" {
		d = oo.Issue[0].Details.Text
	}
	if len(d) > maxReasonBytes {
		d = d[:maxReasonBytes]
	}
	return strings.ToValidUTF8(d, "?")
}
