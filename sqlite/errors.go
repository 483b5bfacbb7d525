package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/vitalgate/vitalgate"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// mapError turns a database error into a *vitalgate.Error. It is the one place that does:
//
//	sql.ErrNoRows                      ENOTFOUND     "<what> not found"
//	primary key or unique constraint   ECONFLICT     "<what> exists already"
//	SQLITE_BUSY, SQLITE_LOCKED         EUNAVAILABLE  "database busy"
//	SQLITE_FULL, SQLITE_IOERR          EUNAVAILABLE  "storage full or failing"
//	anything else                      EINTERNAL
//
// A *vitalgate.Error and a context error are returned unchanged, so callers can test for
// context.Canceled and context.DeadlineExceeded.
func mapError(err error, what string) error {
	if err == nil {
		return nil
	}
	var ve *vitalgate.Error
	if errors.As(err, &ve) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &vitalgate.Error{Code: vitalgate.ENOTFOUND, Message: what + " not found", Err: err}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code()
		switch code & 0xff { // the primary result code
		case sqlite3.SQLITE_CONSTRAINT:
			if code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || code == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
				return &vitalgate.Error{Code: vitalgate.ECONFLICT, Message: what + " exists already", Err: err}
			}
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return vitalgate.Unavailable(err, "database busy")
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			return vitalgate.Unavailable(err, "storage full or failing")
		}
	}
	return vitalgate.Internal(err, "sqlite: "+what)
}

// mapping returns mapError for what, as a function (for rowiter.Each).
func mapping(what string) func(error) error {
	return func(err error) error { return mapError(err, what) }
}
