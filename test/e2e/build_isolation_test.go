package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/testgit"
)

// A hostile Dockerfile's RUN step tries what lies around the build: a
// service bound only to the host's loopback, the host's own address, the
// berth API, an instance's address and a service address of the team. All
// of them fail while the build itself (FROM the hub on loopback, which
// buildkitd and not the RUN step reaches) succeeds; after berth stopped,
// neither the build bridge nor a firewall rule of it remains.
func TestBuildRunStepsAreIsolated(t *testing.T) {
	requireBuildKit(t)
	var s *server
	flags := runtimeFlags(t, func() string { return s.data })
	s = startServer(t, flags...)
	m := regexp.MustCompile(`RUN steps isolated on bridge (\S+) \((\S+)\)`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("the buildkit phase does not say RUN steps are isolated:\n%s", s.out)
	}
	bridge := m[1]
	t.Logf("build bridge %s, subnet %s", bridge, m[2])
	setupShop(s)
	base := s.pushToHub()

	// A team instance with an inner (service) address.
	s.must(201, "POST", comps, map[string]any{
		"alias": "db", "image": base, "memory": "32Mi",
		"cmd":       []string{"sh", "-c", "echo reached-by-build > /i && exec nc -ll -p 7000 -e cat /i"},
		"ports":     []map[string]any{{"port": 7000, "protocol": "tcp", "inner": true}},
		"readiness": map[string]any{"type": "tcp", "port": 7000, "period_seconds": 1},
	})
	if ev := s.action("db", "deploy", nil); ev["status"] != "success" {
		t.Fatalf("deploy db: %v", ev)
	}
	db := s.waitComponent("db", 30*time.Second, func(c componentState) bool { return c.Status == "running" })
	if len(db.Instances) == 0 || db.Instances[0].Address == "" || db.Ports[0].InnerAddress == "" {
		t.Fatalf("db has no instance or inner address: %+v", db)
	}
	instance := db.Instances[0].Address
	if h, _, err := net.SplitHostPort(instance); err == nil {
		instance = h
	}

	host := newHostListeners(t)
	apiHost, apiPort, _ := net.SplitHostPort(s.addr)
	probes := [][3]string{
		{"loopback", "127.0.0.1", fmt.Sprint(host.loopback)},
		{"hostaddr", host.addr, fmt.Sprint(host.any)},
		{"api", apiHost, apiPort},
		{"instance", instance, "7000"},
		{"service", strings.Split(db.Ports[0].InnerAddress, ":")[0], strings.Split(db.Ports[0].InnerAddress, ":")[1]},
	}
	// The listeners answer the host: a blocked probe means the wall.
	for _, p := range probes {
		if got := dialMarker(net.JoinHostPort(p[1], p[2])); p[0] != "api" && got != "reached-by-build" {
			t.Fatalf("control: the host does not reach %s at %s:%s (%q)", p[0], p[1], p[2], got)
		}
	}
	controls := len(host.accepted())
	var run strings.Builder
	for _, p := range probes {
		fmt.Fprintf(&run, "if nc -w 3 %s %s </dev/null | grep -q reached-by-build; then echo probe %s reached; else echo probe %s blocked; fi; ", p[1], p[2], p[0], p[0])
	}
	git := testgit.Serve(t, "", "")
	work := git.Repo("hostile")
	dockerfile := "FROM " + base + "\nRUN " + run.String() + "\nCMD [\"sleep\", \"3600\"]\n"
	git.Commit(work, "probe", map[string]string{"Dockerfile": dockerfile})
	s.must(201, "POST", comps, map[string]any{
		"alias": "hostile", "kind": "source", "source": map[string]any{"url": git.URL("hostile"), "branch": "main"}, "memory": "32Mi",
	})
	ev, log := s.build("hostile", nil)
	if ev["status"] != "success" {
		t.Fatalf("build: %v\n%s", ev, log)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "probe ") && !strings.Contains(line, "nc -w") {
			t.Log(line)
		}
	}
	for _, p := range probes {
		if !strings.Contains(log, "probe "+p[0]+" blocked") {
			t.Errorf("probe %s (%s:%s) was not blocked:\n%s", p[0], p[1], p[2], log)
		}
	}
	if got := host.accepted(); len(got) > controls {
		t.Errorf("host listeners accepted connections from a RUN step: %v", got[controls:])
	}

	s.stop()
	for _, cmd := range [][]string{{"iptables", "-w", "-S"}, {"iptables", "-w", "-t", "nat", "-S"}, {"ip6tables", "-w", "-S"}} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).Output(); err == nil && strings.Contains(string(out), bridge) {
			t.Errorf("after berth stopped, %s still mentions %s:\n%s", strings.Join(cmd, " "), bridge, out)
		}
	}
	if _, err := net.InterfaceByName(bridge); err == nil {
		t.Errorf("after berth stopped, the build bridge %s still exists", bridge)
	}
}

// dialMarker is the first line the listener at addr sends.
func dialMarker(addr string) string {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b := make([]byte, 64)
	n, _ := c.Read(b)
	return strings.TrimSpace(string(b[:n]))
}

// hostListeners listen on the host's loopback and on every address and
// record who connected.
type hostListeners struct {
	addr          string // a non-loopback IPv4 address of the host
	loopback, any int
	mu            sync.Mutex
	accepts       []string
}

func newHostListeners(t *testing.T) *hostListeners {
	h := &hostListeners{}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !strings.HasPrefix(ipn.IP.String(), "10.") {
			h.addr = ipn.IP.String()
			break
		}
	}
	if h.addr == "" {
		t.Skip("the host has no non-loopback IPv4 address outside 10/8")
	}
	h.loopback, h.any = h.listen(t, "127.0.0.1:0"), h.listen(t, "0.0.0.0:0")
	return h
}

func (h *hostListeners) listen(t *testing.T, addr string) int {
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.accepts = append(h.accepts, addr+" from "+c.RemoteAddr().String())
			h.mu.Unlock()
			fmt.Fprintln(c, "reached-by-build")
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func (h *hostListeners) accepted() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.accepts...)
}
