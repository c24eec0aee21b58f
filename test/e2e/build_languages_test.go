package e2e

import (
	"archive/zip"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/testgit"
	"github.com/berth-platform/berth/internal/testsample"
)

// baseImagesCache keeps debootstrap's root file systems between test runs
// (a cold `images prepare` downloads a few hundred MB of Debian packages).
const baseImagesCache = "/var/cache/berth-test/baseimage"

// Go (a module from the proxy), Node.js (a package from npm), Python, a
// static site and an uploaded jar are built on offline base images made by
// `berth images prepare` from Debian's packages, run, and answer through
// the gateway.
func TestBuildLanguages(t *testing.T) {
	requireBuildKit(t)
	if _, err := exec.LookPath("debootstrap"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("debootstrap is needed (apt-get install debootstrap; scripts/test.sh does)")
		}
		t.Skip("debootstrap is not installed")
	}
	if err := os.MkdirAll(baseImagesCache, 0o755); err != nil {
		t.Fatal(err)
	}
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, append(flags, "--base-images-dir", baseImagesCache)...)
	setupShop(s)

	var acc struct {
		EventID string `json:"event_id"`
	}
	start := time.Now()
	s.must(202, "POST", "/api/v1/images/prepare", map[string]any{"languages": []string{"go", "node", "python", "static", "java"}}).json(t, &acc)
	if ev := s.waitEventFor(acc.EventID, 25*time.Minute); ev["status"] != "success" {
		t.Fatalf("images prepare: %v\n%s", ev, s.eventLog(acc.EventID))
	}
	t.Logf("images prepare took %s", time.Since(start).Round(time.Second))

	git := testgit.Serve(t, "", "")
	gc := s.gatewayClient(nil)
	// Go and Node.js declare a port of their own (berth's PORT must follow
	// it, not the default 5000); the others declare none and the build
	// adds the one the app listens on.
	declared := map[string]int{"go": 8080, "node": 3000}
	for lang, files := range testsample.Apps {
		work := git.Repo(lang)
		git.Commit(work, lang+" sample", files)
		create := map[string]any{
			"alias": lang, "kind": "source", "source": map[string]any{"url": git.URL(lang)}, "memory": "256Mi",
		}
		if p := declared[lang]; p > 0 {
			create["ports"] = []map[string]any{{"port": p, "protocol": "http"}}
		}
		s.must(201, "POST", comps, create)
		began := time.Now()
		ev, log := s.build(lang, nil)
		if ev["status"] != "success" {
			t.Errorf("%s build: %v\n%s", lang, ev, log)
			continue
		}
		port := s.component(lang).Ports
		if len(port) != 1 || declared[lang] > 0 && port[0].Port != declared[lang] {
			t.Errorf("%s: the build did not add the app's port, or changed the declared one: %+v", lang, port)
			continue
		}
		s.must(200, "PATCH", fmt.Sprintf("%s/%s/ports/%d", comps, lang, port[0].Port), map[string]any{"outer": true})
		t.Logf("%s: built and running in %s", lang, time.Since(began).Round(100*time.Millisecond))
		if lang == "go" || lang == "node" {
			// Unchanged source: the dependency layers come from the cache.
			ev, log = s.build(lang, nil)
			var hits, steps int
			if i := strings.Index(log, "build runtime image success: "); i >= 0 {
				fmt.Sscanf(log[i:], "build runtime image success: %d of %d steps", &hits, &steps)
			}
			if ev["status"] != "success" || steps == 0 || hits != steps {
				t.Errorf("%s rebuild: %v\n%s", lang, ev, log)
			}
		}
		s.waitComponent(lang, 60*time.Second, func(c componentState) bool { return c.Status == "running" })
		a := s.gatewayDo(gc, "GET", fmt.Sprintf("http://%s-%d-shop.berth.test/", lang, port[0].Port), nil)
		if a.Status != 200 || !strings.Contains(a.Body, "hello from "+lang) {
			t.Errorf("%s through the gateway: %d %q", lang, a.Status, a.Body)
		}
	}

	// An uploaded jar, compiled here with the machine's JDK.
	jar := compileJar(t)
	s.must(201, "POST", comps, map[string]any{
		"alias": "jar", "kind": "source", "source": map[string]any{"type": "package"}, "memory": "512Mi",
		"ports": []map[string]any{{"port": 9090, "protocol": "http", "outer": true}},
	})
	var up struct{ ID string }
	s.must(201, "POST", comps+"/jar/uploads", map[string]any{"name": "hello.jar", "size": len(jar)}).json(t, &up)
	req, _ := http.NewRequest("PATCH", s.url+comps+"/jar/uploads/"+up.ID, bytes.NewReader(jar))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Upload-Offset", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("upload the jar: %v %v", err, resp)
	}
	resp.Body.Close()
	ev, log := s.build("jar", map[string]any{"upload_id": up.ID})
	if ev["status"] != "success" || !strings.Contains(log, "java") {
		t.Fatalf("jar build: %v\n%s", ev, log)
	}
	s.waitComponent("jar", 90*time.Second, func(c componentState) bool { return c.Status == "running" })
	if a := s.gatewayDo(gc, "GET", "http://jar-9090-shop.berth.test/", nil); a.Status != 200 || !strings.Contains(a.Body, "hello from java") {
		t.Errorf("jar through the gateway: %d %q", a.Status, a.Body)
	}
}

// compileJar builds a runnable jar with an HTTP server on $PORT.
func compileJar(t *testing.T) []byte {
	t.Helper()
	if _, err := exec.LookPath("javac"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("javac is needed (apt-get install default-jdk-headless; scripts/test.sh does)")
		}
		t.Skip("no JDK")
	}
	dir := t.TempDir()
	src := `import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;

public class Hello {
    public static void main(String[] args) throws Exception {
        HttpServer s = HttpServer.create(new InetSocketAddress(Integer.parseInt(System.getenv("PORT"))), 0);
        s.createContext("/", x -> {
            byte[] b = "hello from java\n".getBytes();
            x.sendResponseHeaders(200, b.length);
            x.getResponseBody().write(b);
            x.close();
        });
        s.start();
    }
}
`
	if err := os.WriteFile(filepath.Join(dir, "Hello.java"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("javac", "--release", "17", "-d", dir, filepath.Join(dir, "Hello.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	class, err := os.ReadFile(filepath.Join(dir, "Hello.class"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range map[string][]byte{
		"META-INF/MANIFEST.MF": []byte("Manifest-Version: 1.0\r\nMain-Class: Hello\r\n\r\n"),
		"Hello.class":          class,
	} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
