package hub

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// GCStats reports what GarbageCollect did.
type GCStats struct {
	BlobsDeleted        int   // layers, configs and manifests whose content was removed
	BytesFreed          int64 // their total size
	ManifestsDeleted    int   // untagged manifest revisions unlinked from repositories
	RepositoriesRemoved int   // repositories left without manifests or tags
	// Skipped says nothing was collected because the hub holds content
	// addressed by another digest than sha256 (see holdsAliases).
	Skipped bool
	// Waited is the time spent waiting for pushes to go quiet; Swept is the
	// time pushes were held off while the sweep ran.
	Waited, Swept time.Duration
}

// GarbageCollect deletes every manifest that no tag (directly or through an
// index) reaches and every blob no remaining manifest references, using
// distribution's storage.MarkAndSweep with RemoveUntagged.
//
// It is safe while the registry serves. Upstream requires a read-only or
// stopped registry because a push makes a blob referenced only at its last
// step (the manifest PUT), after checking with HEAD or uploading the blob
// earlier. So:
//
//   - every push-activity request (writes except DELETE, and HEAD on blobs)
//     holds the hub's sweep lock shared, and the sweep holds it exclusively:
//     pushes wait during the sweep, and no blob can be reported present and
//     then swept within one request;
//   - before taking the lock GarbageCollect waits until no push-activity
//     request is in flight and none has happened for Config.GCQuietPeriod,
//     so a push in progress (its blobs uploaded, its manifest not yet) is
//     not cut in half. Under sustained pushing it waits until ctx ends.
//
// A push whose client pauses longer than GCQuietPeriod between requests can
// still lose an unreferenced blob it meant to reuse; its manifest PUT then
// fails with MANIFEST_BLOB_UNKNOWN rather than storing a broken image, and a
// retry uploads the blob again. Pulls never wait; pulling an image whose
// tag was deleted may fail mid-way, as it would anyway.
func (h *Hub) GarbageCollect(ctx context.Context) (GCStats, error) {
	var stats GCStats
	start := time.Now()
	if err := h.lockForSweep(ctx); err != nil {
		return stats, err
	}
	defer h.sweep.Unlock()
	locked := time.Now()
	stats.Waited = locked.Sub(start)

	blobsBefore, err := h.blobSizes(ctx)
	if err != nil {
		return stats, err
	}
	manifestsBefore, _, err := h.countManifests(ctx)
	if err != nil {
		return stats, err
	}

	if found, err := h.holdsAliases(ctx); err != nil || found {
		// distribution's collector marks what manifests name (a sha512
		// digest) and sweeps the blob store by sha256: it would delete the
		// content of every sha512 image. Keeping everything is the safe
		// answer until it learns aliases.
		h.log.Warn("garbage collection skipped: the hub holds content pushed by a sha512 digest, which the collector would delete", "err", err)
		stats.Skipped = true
		return stats, nil
	}

	// Quiet: MarkAndSweep otherwise prints every digest on stdout.
	if err := storage.MarkAndSweep(ctx, h.driver, h.reg, storage.GCOpts{RemoveUntagged: true, Quiet: true}); err != nil {
		return stats, fmt.Errorf("hub: garbage collect: %w", err)
	}

	manifestsAfter, empty, err := h.countManifests(ctx)
	if err != nil {
		return stats, err
	}
	stats.ManifestsDeleted = manifestsBefore - manifestsAfter
	remover, ok := h.reg.(distribution.RepositoryRemover)
	for _, name := range empty {
		if !ok {
			break
		}
		if err := remover.Remove(ctx, name); err != nil {
			return stats, fmt.Errorf("hub: removing empty repository %s: %w", name, err)
		}
		stats.RepositoriesRemoved++
	}

	blobsAfter, err := h.blobSizes(ctx)
	if err != nil {
		return stats, err
	}
	for d, size := range blobsBefore {
		if _, ok := blobsAfter[d]; !ok {
			stats.BlobsDeleted++
			stats.BytesFreed += size
		}
	}
	stats.Swept = time.Since(locked)
	h.log.Info("garbage collected",
		"blobs", stats.BlobsDeleted, "bytes", stats.BytesFreed,
		"manifests", stats.ManifestsDeleted, "repositories", stats.RepositoriesRemoved,
		"waited", stats.Waited, "swept", stats.Swept)
	return stats, nil
}

// holdsAliases reports whether any repository links a digest of another
// algorithm than sha256 (see oci11.go).
func (h *Hub) holdsAliases(ctx context.Context) (bool, error) {
	found := false
	err := h.driver.Walk(ctx, "/docker/registry/v2/repositories", func(fi storagedriver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		dir, base := path.Split(fi.Path())
		parent := path.Base(dir)
		if (parent == "_layers" || parent == "revisions") && base != digest.Canonical.String() {
			found = true
			return storagedriver.ErrFilledBuffer
		}
		if base == "_uploads" || (parent == "_layers" || parent == "revisions") {
			return storagedriver.ErrSkipDir
		}
		return nil
	})
	if isPathNotFound(err) || errors.Is(err, storagedriver.ErrFilledBuffer) {
		err = nil
	}
	return found, err
}

// lockForSweep takes the sweep lock exclusively once pushes are quiet.
func (h *Hub) lockForSweep(ctx context.Context) error {
	quiet := max(h.cfg.GCQuietPeriod, 0)
	for {
		wait := h.pushWait(quiet)
		if wait <= 0 {
			h.sweep.Lock()
			// A push may have started between the check and the lock; it
			// has either finished (and refreshed lastPush) or is queued
			// behind us with pushes > 0. Either way, let it through.
			if wait = h.pushWait(quiet); wait <= 0 {
				return nil
			}
			h.sweep.Unlock()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("hub: waiting for pushes to finish: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// pushWait is how long until pushes have been quiet for quiet.
func (h *Hub) pushWait(quiet time.Duration) time.Duration {
	const poll = 50 * time.Millisecond
	if h.pushes.Load() > 0 {
		return poll
	}
	left := quiet - time.Since(time.Unix(0, h.lastPush.Load()))
	if left > 0 {
		return max(left, time.Millisecond)
	}
	return 0
}

func (h *Hub) blobSizes(ctx context.Context) (map[digest.Digest]int64, error) {
	sizes := make(map[digest.Digest]int64)
	statter := h.reg.BlobStatter()
	err := h.reg.Blobs().Enumerate(ctx, func(d digest.Digest) error {
		desc, err := statter.Stat(ctx, d)
		if err != nil {
			return err
		}
		sizes[d] = desc.Size
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return nil, fmt.Errorf("hub: listing blobs: %w", err)
	}
	return sizes, nil
}

// countManifests counts manifest revisions across repositories and lists
// repositories that have neither manifests nor tags.
func (h *Hub) countManifests(ctx context.Context) (int, []reference.Named, error) {
	enum, ok := h.reg.(distribution.RepositoryEnumerator)
	if !ok {
		return 0, nil, errors.New("hub: storage cannot enumerate repositories")
	}
	total := 0
	var empty []reference.Named
	err := enum.Enumerate(ctx, func(name string) error {
		named, repo, err := h.repository(ctx, name)
		if err != nil {
			return err
		}
		ms, err := repo.Manifests(ctx)
		if err != nil {
			return err
		}
		me, ok := ms.(distribution.ManifestEnumerator)
		if !ok {
			return errors.New("manifest service cannot enumerate")
		}
		n := 0
		err = me.Enumerate(ctx, func(digest.Digest) error { n++; return nil })
		if err != nil && !isPathNotFound(err) {
			return err
		}
		total += n
		if n == 0 {
			tags, err := repo.Tags(ctx).All(ctx)
			if err != nil && !isRepoUnknown(err) {
				return err
			}
			if len(tags) == 0 {
				empty = append(empty, named)
			}
		}
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return 0, nil, fmt.Errorf("hub: listing manifests: %w", err)
	}
	return total, empty, nil
}

func (h *Hub) repository(ctx context.Context, name string) (reference.Named, distribution.Repository, error) {
	named, err := reference.WithName(name)
	if err != nil {
		return nil, nil, fmt.Errorf("hub: repository %q: %w", name, err)
	}
	repo, err := h.reg.Repository(ctx, named)
	if err != nil {
		return nil, nil, fmt.Errorf("hub: repository %q: %w", name, err)
	}
	return named, repo, nil
}

// Tags lists repo's tags, sorted. ErrNotFound if the repository has none
// or does not exist.
func (h *Hub) Tags(ctx context.Context, repo string) ([]string, error) {
	_, r, err := h.repository(ctx, repo)
	if err != nil {
		return nil, err
	}
	tags, err := r.Tags(ctx).All(ctx)
	if err != nil {
		if isRepoUnknown(err) || isPathNotFound(err) {
			return nil, fmt.Errorf("hub: %s: %w", repo, ErrNotFound)
		}
		return nil, fmt.Errorf("hub: tags of %s: %w", repo, err)
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("hub: %s: %w", repo, ErrNotFound)
	}
	return tags, nil
}

// Digest resolves repo:tag to its manifest digest ("sha256:...").
func (h *Hub) Digest(ctx context.Context, repo, tag string) (string, error) {
	_, r, err := h.repository(ctx, repo)
	if err != nil {
		return "", err
	}
	desc, err := r.Tags(ctx).Get(ctx, tag)
	if err != nil {
		if isTagUnknown(err) || isPathNotFound(err) {
			return "", fmt.Errorf("hub: %s:%s: %w", repo, tag, ErrNotFound)
		}
		return "", fmt.Errorf("hub: resolving %s:%s: %w", repo, tag, err)
	}
	return desc.Digest.String(), nil
}

// DeleteTag removes tag from repo. The image's content stays until
// GarbageCollect finds nothing else referencing it.
func (h *Hub) DeleteTag(ctx context.Context, repo, tag string) error {
	h.sweep.RLock()
	defer h.sweep.RUnlock()
	_, r, err := h.repository(ctx, repo)
	if err != nil {
		return err
	}
	if err := r.Tags(ctx).Untag(ctx, tag); err != nil {
		if isPathNotFound(err) || isTagUnknown(err) {
			return fmt.Errorf("hub: %s:%s: %w", repo, tag, ErrNotFound)
		}
		return fmt.Errorf("hub: untagging %s:%s: %w", repo, tag, err)
	}
	return nil
}

// DeleteManifest unlinks the manifest ref (a digest, or a tag resolved to
// one) from repo along with every tag pointing at it, as the registry's
// DELETE /v2/<repo>/manifests/<digest> does.
func (h *Hub) DeleteManifest(ctx context.Context, repo, ref string) error {
	h.sweep.RLock()
	defer h.sweep.RUnlock()
	_, r, err := h.repository(ctx, repo)
	if err != nil {
		return err
	}
	dgst, err := digest.Parse(ref)
	if err != nil {
		desc, err := r.Tags(ctx).Get(ctx, ref)
		if err != nil {
			if isTagUnknown(err) || isPathNotFound(err) {
				return fmt.Errorf("hub: %s:%s: %w", repo, ref, ErrNotFound)
			}
			return fmt.Errorf("hub: resolving %s:%s: %w", repo, ref, err)
		}
		dgst = desc.Digest
	}
	ms, err := r.Manifests(ctx)
	if err != nil {
		return fmt.Errorf("hub: manifests of %s: %w", repo, err)
	}
	if err := ms.Delete(ctx, dgst); err != nil {
		if errors.Is(err, distribution.ErrBlobUnknown) || isPathNotFound(err) {
			return fmt.Errorf("hub: %s@%s: %w", repo, dgst, ErrNotFound)
		}
		return fmt.Errorf("hub: deleting %s@%s: %w", repo, dgst, err)
	}
	tags := r.Tags(ctx)
	referencing, err := tags.Lookup(ctx, v1.Descriptor{Digest: dgst})
	if err != nil && !isRepoUnknown(err) && !isPathNotFound(err) {
		return fmt.Errorf("hub: tags of %s@%s: %w", repo, dgst, err)
	}
	for _, tag := range referencing {
		if err := tags.Untag(ctx, tag); err != nil && !isPathNotFound(err) {
			return fmt.Errorf("hub: untagging %s:%s: %w", repo, tag, err)
		}
	}
	return nil
}

func isPathNotFound(err error) bool {
	var e storagedriver.PathNotFoundError
	return errors.As(err, &e)
}

func isRepoUnknown(err error) bool {
	var e distribution.ErrRepositoryUnknown
	return errors.As(err, &e)
}

func isTagUnknown(err error) bool {
	var e distribution.ErrTagUnknown
	return errors.As(err, &e)
}
