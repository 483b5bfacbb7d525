package vault

import (
	"context"
	"fmt"

	"github.com/vitalgate/vitalgate/audit"
)

// RotateAs rewraps every data key under the current key-encryption key (Rotate) and records
// the rotation, done by operator, in alog. It returns how many data keys changed. If the
// entry cannot be written the rewrap has still happened (it is idempotent): the error says
// so, and running the rotation again records it.
func (v *Vault) RotateAs(ctx context.Context, alog *audit.Log, operator string) (int, error) {
	changed, err := v.Rotate(ctx)
	if err != nil {
		return 0, err
	}
	if err := alog.Append(ctx, audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "keys-rotate",
		AgentType: audit.AgentOperator, AgentID: operator, Count: changed,
		OutcomeDesc: "new key-encryption key " + v.kr().CurrentKEKID()}); err != nil {
		return changed, fmt.Errorf("the data keys are rewrapped but the rotation could not be audited (run it again): %w", err)
	}
	return changed, nil
}
