package auth

import (
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/detect"
)

// tokenSignal is the detection signal of a refused token request: a failed (or throttled)
// client authentication, or a request for scopes or access beyond the client's role (a
// scope-escalation attempt). Reason is the error code, never the message.
func tokenSignal(req TokenRequest, c vitalgate.Client, err error, now time.Time) detect.Signal {
	kind := detect.KindAuthFailure
	code := vitalgate.ErrorCode(err)
	if code == vitalgate.EFORBIDDEN {
		kind = detect.KindScopeEscalation
	}
	return detect.Signal{Kind: kind, At: now, Source: req.Source, Client: c.ID, Site: c.Site, Reason: code}
}
