package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/vitalgate/vitalgate"
)

const (
	siteHoldSQL       = `SELECT 1 FROM legal_holds WHERE site = $1 LIMIT 1`
	approveErasureSQL = `UPDATE erasure_requests SET approved_by = $1, approved_at = $2 WHERE id = $3 AND approved_by = ''`
)

// ApproveSiteErasureTx records, in tx, approvedBy's approval of the site-erasure request id
// at now (a time parameter as Backend.Time gives it), once no legal hold is in place on a
// patient of site: ECONFLICT, naming the site, while one is. The caller has checked the
// request (vitalgate.ErasureRequest.CheckApproval) and erases the site in the same tx.
func (s Shared) ApproveSiteErasureTx(ctx context.Context, tx Conn, id, site, approvedBy string, now any) error {
	err := tx.QueryRow(ctx, siteHoldSQL, site).Scan(new(int))
	if err == nil {
		return vitalgate.Errorf(vitalgate.ECONFLICT, "a legal hold is in place on a patient of site %q: release it first", site)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return s.b.MapError(err, "legal hold")
	}
	_, err = tx.Exec(ctx, approveErasureSQL, approvedBy, now, id)
	return s.b.MapError(err, "approve erasure")
}
