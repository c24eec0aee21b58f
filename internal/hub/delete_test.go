package hub

import (
	"errors"
	"slices"
	"testing"
)

// Deleting a team's repositories takes every one under "<team>/" and
// nothing of a team whose name merely starts the same; the next collection
// frees the blobs only the deleted team used.
func TestDeleteRepositories(t *testing.T) {
	root := t.TempDir()
	th := startHub(t, root, nil)
	ctx := testCtx(t)
	auth := th.internalAuth()

	gone, kept := randomImage(t), randomImage(t)
	push(t, ctx, th.ref(t, "alpha/web:v1"), gone, auth)
	push(t, ctx, th.ref(t, "alpha/tools/cli:v1"), gone, auth)
	push(t, ctx, th.ref(t, "alphabet/web:v1"), kept, auth)
	push(t, ctx, th.ref(t, "beta/web:v1"), kept, auth)

	removed, err := th.DeleteRepositories(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{"alpha/tools/cli", "alpha/web"}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, repo := range []string{"alpha/web", "alpha/tools/cli"} {
		if _, err := th.Tags(ctx, repo); !errors.Is(err, ErrNotFound) {
			t.Errorf("tags of deleted %s: %v, want ErrNotFound", repo, err)
		}
	}
	for _, repo := range []string{"alphabet/web", "beta/web"} {
		pullAndVerify(t, ctx, th.ref(t, repo+":v1"), mustDigest(t, kept), auth)
	}

	if _, err := th.GarbageCollect(ctx); err != nil {
		t.Fatal(err)
	}
	layers, _ := gone.Layers()
	for _, l := range layers {
		if blobExists(t, root, mustDigest(t, l)) {
			t.Errorf("layer %s of the deleted team survived the collection", mustDigest(t, l))
		}
	}
	if again, err := th.DeleteRepositories(ctx, "alpha"); err != nil || len(again) != 0 {
		t.Fatalf("second delete: %v %v, want nothing and no error", again, err)
	}
	if _, err := th.DeleteRepositories(ctx, "/"); err == nil {
		t.Fatal("an empty prefix was accepted: it would delete every repository")
	}
}
