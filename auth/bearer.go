package auth

import (
	"context"
	"slices"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fresh"
)

// DefaultClientStaleness bounds how old the client facts are that Authenticate uses: a client
// disabled on any node is refused by every node within this time, also on tokens issued
// before.
const DefaultClientStaleness = 2 * time.Second

// Authenticate verifies a bearer access token this server issued and that its client may
// still act: registered and not disabled, from client facts at most ClientStaleness old
// (the registry's bounded-staleness mechanism, package fresh), and of the site the token
// names (a token names the site its client had when it was issued). It returns the token's
// claims.
// Errors: EUNAUTHORIZED (bad, expired or foreign token; client gone or disabled),
// EUNAVAILABLE when the store cannot answer.
func (s *Service) Authenticate(ctx context.Context, token string) (Claims, error) {
	c, err := s.cfg.Tokens.Verify(token)
	if err != nil {
		return Claims{}, err
	}
	cl, err := s.clients.Get(ctx, c.ClientID, func(ctx context.Context) (vitalgate.Client, error) {
		return s.cfg.Store.Client(ctx, c.ClientID)
	})
	switch {
	case vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND:
		return Claims{}, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "the access token's client is no longer registered")
	case err != nil:
		return Claims{}, err
	case cl.Disabled:
		return Claims{}, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "the access token's client has been disabled")
	case cl.Site != c.Site && !slices.Contains(cl.OtherSites, c.Site):
		return Claims{}, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "the access token was issued for a site its client does not act within")
	}
	return c, nil
}

// newClientCache returns the cache of client facts Authenticate reads.
func newClientCache(maxAge time.Duration, now func() time.Time) *fresh.Cache[string, vitalgate.Client] {
	if maxAge == 0 {
		maxAge = DefaultClientStaleness
	}
	if maxAge < 0 {
		maxAge = 0
	}
	return fresh.New[string, vitalgate.Client](maxAge, now)
}
