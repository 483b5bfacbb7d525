// Package vitalgate holds Vitalgate's domain types (devices, patients, resources, principals),
// its transport-neutral error type and the contracts between services and stores.
//
// It imports only the standard library: no transport, no database. Every other package
// depends on it; it depends on none of them.
package vitalgate

import (
	"context"
	"errors"
	"fmt"
)

// Error codes. They are transport-neutral; httpapi and mllp map them to protocol errors in
// exactly one place each.
const (
	EINVALID       = "invalid"       // malformed input: syntax, structure, wrong types (HTTP 400)
	EUNPROCESSABLE = "unprocessable" // well-formed but breaks a rule: range, unit, assignment (422)
	EUNAUTHORIZED  = "unauthorized"  // no or bad credentials (401)
	EFORBIDDEN     = "forbidden"     // authenticated, not permitted (403)
	ENOTFOUND      = "not_found"     // no such resource (404)
	ECONFLICT      = "conflict"      // exists already, or was used already (409)
	ETOOLARGE      = "too_large"     // body, bundle or field over a limit (413)
	EUNSUPPORTED   = "unsupported"   // media type or feature not supported (415)
	ETHROTTLED     = "throttled"     // over a rate limit (429)
	EUNAVAILABLE   = "unavailable"   // overloaded or a dependency is down; retry later (503)
	EINTERNAL      = "internal"      // a bug or an unexpected fault (500)
)

// Error is Vitalgate's error. Message is safe to show to the caller; Field, when set, names the
// offending element as a FHIRPath-like expression (for example "Observation.valueQuantity.unit").
// Err, when set, is the internal cause: it is logged with an error id, never shown.
type Error struct {
	Code    string
	Message string
	Field   string
	Err     error
}

// Error implements the error interface. It includes the internal cause, so it is meant for logs,
// not for callers; callers see ErrorMessage.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Field != "" {
		s += " (at " + e.Field + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted, user-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an *Error that names the offending element.
func FieldErrorf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected fault. The caller sees only a generic message.
func Internal(err error, context string) *Error {
	return &Error{Code: EINTERNAL, Message: "internal error", Err: fmt.Errorf("%s: %w", context, err)}
}

// NotFound returns the ENOTFOUND error a store answers when what it was asked for does not
// exist: "<what> not found", wrapping the driver's err.
func NotFound(what string, err error) *Error {
	return &Error{Code: ENOTFOUND, Message: what + " not found", Err: err}
}

// Settled reports whether a store returns err as it is rather than mapping it: nil, an *Error
// (mapped already), or a context error of the caller's, which stays unwrapped so that callers
// can test for context.Canceled and context.DeadlineExceeded.
func Settled(err error) bool {
	var e *Error
	return err == nil || errors.As(err, &e) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Unavailable wraps a transient fault (database busy, disk full, overload): the caller should
// retry later.
func Unavailable(err error, message string) *Error {
	return &Error{Code: EUNAVAILABLE, Message: message, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other
// non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of the first *Error in err's chain, or a
// generic message for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the element named by the first *Error in err's chain, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
