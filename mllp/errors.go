package mllp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/pcd01"
)

// errorACK is the one place where the outcome of handling a message becomes an HL7 ACK
// (like httpapi's errors.go for HTTP): err nil is AA; otherwise the code and ERR-3
// condition come from pcd01.AckCodeFor, ERR-2 from the error's location (or loc), and ERR-8
// from its user-safe message; controlID becomes the ACK's MSH-10. An internal or unavailable error gets an error id, written in
// ERR-8 and logged with the cause, so that an operator can find what a device was told.
func errorACK(ctx context.Context, log *slog.Logger, msg *hl7v2.Message, err error, loc *hl7v2.Location, now time.Time, controlID string) (ack []byte, code string) {
	code, cond := pcd01.AckCodeFor(err)
	var errs []hl7v2.AckError
	if err != nil {
		ae := hl7v2.AckErrorFrom(err)
		if ae.Condition == "" {
			ae.Condition = cond
		}
		if loc != nil && ae.Loc.Segment == "" {
			ae.Loc = *loc
		}
		if c := vitalgate.ErrorCode(err); c == vitalgate.EINTERNAL || c == vitalgate.EUNAVAILABLE {
			id := newID()
			ae.Message += " (error id " + id + ")"
			log.LogAttrs(ctx, slog.LevelError, "hl7 message failed",
				slog.String("request_id", vitalgate.RequestInfoFrom(ctx).ID), slog.String("error_id", id),
				slog.String("code", c), slog.String("error", err.Error()))
		}
		errs = append(errs, ae)
	}
	return hl7v2.BuildACK(msg, code, errs, now, controlID), code
}

// newID returns 20 random hex digits: ACK control ids, request ids, error ids.
func newID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
