package vitalgate

import "context"

// RequestInfo describes the request being served, for audit entries and logs: request
// metadata, not a dependency.
type RequestInfo struct {
	ID       string // request id, also in the X-Request-Id header and the logs
	RemoteIP string // the client's address
	// TLSFingerprint is a digest of the client's TLS hello (versions, cipher suites,
	// extensions in order, groups, signature schemes, protocols), set at the handshake;
	// the same TLS stack gives the same one.
	TLSFingerprint string
}

type requestInfoKey struct{}

// WithRequestInfo returns ctx carrying ri.
func WithRequestInfo(ctx context.Context, ri RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, ri)
}

// RequestInfoFrom returns the RequestInfo of ctx, or the zero value.
func RequestInfoFrom(ctx context.Context) RequestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(RequestInfo)
	return ri
}
