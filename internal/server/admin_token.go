package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/berth-platform/berth/internal/api"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/store"
)

const adminTokenSetting = "admin_token_id"

// ensureAdminToken creates the admin token on first start (or when reset is
// asked) and writes its secret to path with mode 0600. It reports whether a
// new token was written.
func ensureAdminToken(ctx context.Context, st store.Store, path string, reset bool) (bool, error) {
	oldID, err := st.GetSetting(ctx, adminTokenSetting)
	if err != nil && !errors.Is(err, model.ErrNotFound) {
		return false, fmt.Errorf("read admin token setting: %w", err)
	}
	if oldID != "" && !reset {
		if _, err := os.Stat(path); err != nil {
			return false, fmt.Errorf("admin token exists but %s is missing: start once with --reset-admin-token to issue a new one", path)
		}
		return false, nil
	}
	secret := api.NewSecret()
	tok := &model.Token{ID: model.NewID("tok"), Name: "admin", Admin: true, Hash: api.HashSecret(secret), CreatedAt: time.Now().UTC()}
	// Write the file first: a token nobody can read must never be the only one.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("write admin token: %w", err)
	}
	if err := st.CreateToken(ctx, tok); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("store admin token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return false, fmt.Errorf("write admin token: %w", err)
	}
	if err := st.PutSetting(ctx, adminTokenSetting, tok.ID); err != nil {
		return false, fmt.Errorf("store admin token setting: %w", err)
	}
	if oldID != "" {
		if err := st.DeleteToken(ctx, "", oldID); err != nil && !errors.Is(err, model.ErrNotFound) {
			return false, fmt.Errorf("revoke the old admin token: %w", err)
		}
	}
	return true, nil
}
