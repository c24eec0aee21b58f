package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-platform/berth/internal/testgit"
)

// A hostile team's checkouts and uploads are untrusted trees: symlinks in
// them never make berth read or write a host file. Each attack fails the
// build with a message naming the entry, and the host file stays as it was.
func TestBuildNeverFollowsLinksOutOfTheTree(t *testing.T) {
	requireBuildKit(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	setupShop(s)
	base := s.pushToHub()
	hostDir := t.TempDir()
	hostFile := filepath.Join(hostDir, "host-file")
	const hostContent = "web: touch /tmp/owned-by-a-tenant\n"
	if err := os.WriteFile(hostFile, []byte(hostContent), 0o644); err != nil {
		t.Fatal(err)
	}
	git := newLinkRepos(t, base)

	for _, tc := range []struct {
		alias, link, target, want string
	}{
		// The plan's ignore lines would be appended to the host file.
		{alias: "ignore", link: ".dockerignore", target: hostFile, want: ".dockerignore leaves the source directory"},
		// ... or create it.
		{alias: "create", link: ".dockerignore", target: filepath.Join(hostDir, "created"), want: ".dockerignore leaves the source directory"},
		// The host file would become the start command.
		{alias: "procfile", link: "Procfile", target: hostFile, want: "Procfile leaves the source directory"},
		{alias: "dockerfile", link: "Dockerfile", target: hostFile, want: "Dockerfile leaves the source directory"},
	} {
		url := git.withLink(tc.alias, tc.link, tc.target)
		s.must(201, "POST", comps, map[string]any{"alias": tc.alias, "kind": "source", "source": map[string]any{"url": url}})
		ev, log := s.build(tc.alias, nil)
		if ev["status"] != "failure" || !strings.Contains(log, tc.want) {
			t.Errorf("%s linked to a host path: %v\n%s", tc.link, ev, log)
		}
	}
	if b, err := os.ReadFile(hostFile); err != nil || string(b) != hostContent {
		t.Errorf("the host file was written through a checkout: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(hostDir, "created")); err == nil {
		t.Error("a host file was created through a checkout's .dockerignore")
	}

	// An upload whose link reads as inside but climbs through another.
	s.must(201, "POST", comps, map[string]any{"alias": "pkg", "kind": "source", "source": map[string]any{"type": "package"}})
	id := s.upload("pkg", "app.tar.gz", linkChainTarGz(t))
	ev, log := s.build("pkg", map[string]any{"upload_id": id})
	if ev["status"] != "failure" || !strings.Contains(log, `entry "out"`) || !strings.Contains(log, "outside the package through other links") {
		t.Errorf("link chain upload: %v\n%s", ev, log)
	}
}

// linkRepos serves repositories that each hold one hostile link.
type linkRepos struct {
	t    *testing.T
	base string // the image their Dockerfile starts from
	git  *testgit.Server
}

func newLinkRepos(t *testing.T, base string) *linkRepos {
	return &linkRepos{t: t, base: base, git: testgit.Serve(t, "", "")}
}

// withLink pushes a buildable repository whose link points at target.
func (r *linkRepos) withLink(name, link, target string) string {
	work := r.git.Repo(name)
	if err := os.Symlink(target, filepath.Join(work, link)); err != nil {
		r.t.Fatal(err)
	}
	files := map[string]string{"index.html": "hi\n"}
	if link != "Dockerfile" {
		files["Dockerfile"] = "FROM " + r.base + "\nCOPY index.html /www/index.html\n"
	}
	r.git.Commit(work, "a link out", files)
	return r.git.URL(name)
}

// linkChainTarGz holds sub/up -> .. and out -> sub/up/.., which reads as
// "sub" but resolves above the tree.
func linkChainTarGz(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range []*tar.Header{
		{Name: "index.html", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
		{Name: "sub/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "sub/up", Typeflag: tar.TypeSymlink, Linkname: ".."},
		{Name: "out", Typeflag: tar.TypeSymlink, Linkname: "sub/up/.."},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write([]byte("hi\n"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	_ = zw.Close()
	return buf.Bytes()
}

// upload sends data as one chunk and returns the upload's id.
func (s *server) upload(alias, fileName string, data []byte) string {
	s.t.Helper()
	var up struct{ ID string }
	s.must(201, "POST", comps+"/"+alias+"/uploads", map[string]any{"name": fileName, "size": len(data)}).json(s.t, &up)
	req, _ := http.NewRequest("PATCH", s.url+comps+"/"+alias+"/uploads/"+up.ID, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		s.t.Fatalf("upload chunk: %d", resp.StatusCode)
	}
	return up.ID
}
