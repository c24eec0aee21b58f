package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
)

// DeleteRepositories removes every repository named prefix or under
// prefix + "/" (a team's "<team>", a component's "<team>/<alias>"): its
// tags, manifest links, layer links and unfinished uploads. It returns the
// repositories removed. The blobs they used stay until GarbageCollect finds
// nothing else referencing them; another team's repository that shares a
// layer keeps it.
//
// A repository is removed under the sweep lock held shared, as a delete
// request would, so a sweep never sees it half gone.
func (h *Hub) DeleteRepositories(ctx context.Context, prefix string) ([]string, error) {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return nil, errors.New("hub: delete repositories: the prefix is empty (that would be every repository)")
	}
	names, err := h.repositoriesUnder(ctx, prefix)
	if err != nil {
		return nil, err
	}
	remover, ok := h.reg.(distribution.RepositoryRemover)
	if !ok {
		return nil, errors.New("hub: storage cannot remove repositories")
	}
	h.sweep.RLock()
	defer h.sweep.RUnlock()
	var removed []string
	for _, name := range names {
		named, err := reference.WithName(name)
		if err != nil {
			return removed, fmt.Errorf("hub: repository %q: %w", name, err)
		}
		if err := remover.Remove(ctx, named); err != nil && !isPathNotFound(err) {
			return removed, fmt.Errorf("hub: removing repository %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	if len(removed) > 0 {
		h.log.Info("repositories deleted", "prefix", prefix, "repositories", removed)
	}
	return removed, nil
}

// repositoriesUnder lists the repositories named prefix or under prefix/.
func (h *Hub) repositoriesUnder(ctx context.Context, prefix string) ([]string, error) {
	enum, ok := h.reg.(distribution.RepositoryEnumerator)
	if !ok {
		return nil, errors.New("hub: storage cannot enumerate repositories")
	}
	var names []string
	err := enum.Enumerate(ctx, func(name string) error {
		if name == prefix || strings.HasPrefix(name, prefix+"/") {
			names = append(names, name)
		}
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return nil, fmt.Errorf("hub: listing repositories: %w", err)
	}
	return names, nil
}
