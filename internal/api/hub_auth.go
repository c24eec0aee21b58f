package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-platform/berth/internal/hub"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

// HubAuthenticator lets berth tokens log in to the hub (docker login with
// any username and a token as the password): the admin token reaches every
// repository, a team token its team's, pushing and deleting from role
// developer up (who may push may overwrite a tag anyway).
func HubAuthenticator(st store.Store) hub.Authenticator {
	return func(ctx context.Context, username, password string) (hub.Principal, error) {
		tok, err := VerifyToken(ctx, st, password)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
				return hub.Principal{}, fmt.Errorf("%s: %w", e.Message, hub.ErrUnauthorized)
			}
			return hub.Principal{}, err
		}
		if tok.Admin {
			return hub.Principal{Subject: "admin", Admin: true, Pull: true, Push: true, Delete: true}, nil
		}
		return hub.Principal{Subject: tok.Team + "/" + tok.Name, Teams: []string{tok.Team},
			Pull: true, Push: tok.Role.AtLeast(model.RoleDeveloper), Delete: tok.Role.AtLeast(model.RoleDeveloper)}, nil
	}
}
