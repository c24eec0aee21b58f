package server

import (
	"context"
	"log/slog"

	"github.com/berth-platform/berth/internal/hub"
)

// hubRepositoryDeleter removes a deleted team's or component's hub
// repositories, then frees the blobs only they used in the background: the
// hub's sweep waits for pushes to go quiet, the delete does not.
func hubRepositoryDeleter(h *hub.Hub) func(ctx context.Context, prefix string) ([]string, error) {
	return func(ctx context.Context, prefix string) ([]string, error) {
		removed, err := h.DeleteRepositories(ctx, prefix)
		if len(removed) > 0 {
			go func() {
				if _, err := h.GarbageCollect(context.WithoutCancel(ctx)); err != nil {
					slog.Warn("collect the blobs of deleted repositories", "err", err)
				}
			}()
		}
		return removed, err
	}
}
