package buildkit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-platform/berth/internal/runtime/cninetwork"
)

// TestBuildNetworkIsolated plays a hostile Dockerfile: its RUN steps try
// the host's loopback, the host's own address, the build bridge's
// gateway, the host over IPv6 link-local, an "instance" network berth
// denies and the host network through the network.host entitlement.
// All fail; a network that stands for the outside is reached through
// NAT. The same probes on the host network reach the host, which shows
// the probes would see a hole. Stopping leaves no rule, bridge or lease.
func TestBuildNetworkIsolated(t *testing.T) {
	requirePrereqs(t)
	host := newProbeHost(t)
	instance := newFakeNetwork(t, host, "instance")
	outside := newFakeNetwork(t, host, "outside")

	e := newEnvWith(t, func(c *DaemonConfig) { c.Network.Deny = []string{instance.subnet.String()} })
	bn := e.daemon.net
	if bn == nil {
		t.Fatal("the daemon runs on the host network by default")
	}
	t.Logf("build network %s %s, %s", bn.bridge, bn.subnet, e.daemon.NetworkSummary())
	gwLinkLocal := linkLocal(t, bn.bridge)

	probes := []probe{
		{"loopback", "127.0.0.1", host.loopback},
		{"hostaddr", host.addr.String(), host.any},
		{"gateway", bn.gateway().String(), host.any},
		{"instance", instance.peer.String(), instance.port},
		{"outside", outside.peer.String(), outside.port},
	}
	if gwLinkLocal != "" {
		probes = append(probes, probe{"ipv6", gwLinkLocal + "%$IF", host.any6})
	}
	// IF is the step's interface (not lo): a link-local address needs it.
	out := runProbes(t, e, probes, `ip addr; IF=$(ip -o link | awk -F': ' '$2 != "lo" { split($2, a, "@"); print a[1]; exit }')`)
	for _, p := range probes {
		want := "blocked"
		if p.name == "outside" {
			want = "reached"
		}
		if !strings.Contains(out, "probe "+p.name+" "+want) {
			t.Errorf("probe %s: want %s\n%s", p.name, want, out)
		}
	}
	if got := host.accepted(); len(got) > 0 {
		t.Errorf("host listeners accepted connections from RUN steps: %v", got)
	}
	inets := inetAddrs(out)
	if len(inets) != 1 || !bn.subnet.Contains(inets[0]) {
		t.Errorf("the RUN step has %v, want one address in the build subnet %s:\n%s", inets, bn.subnet, out)
	}

	t.Run("other-run-step", func(t *testing.T) {
		if !bridgeNetfilter() {
			t.Skip("br_netfilter is off: RUN steps on one bridge are not kept apart")
		}
		// Two stages run at once: one listens, the other tries every
		// address of the build subnet.
		prefix := bn.gateway().String()[:strings.LastIndex(bn.gateway().String(), ".")]
		df := "FROM " + e.base + " AS listener\n" +
			"RUN ip -4 addr | grep 'inet " + prefix + "'; (nc -ll -p 7777 -e echo reached-by-build &); sleep 10; echo > /l\n" +
			"FROM " + e.base + " AS prober\n" +
			"RUN sleep 3; for i in $(seq 2 254); do (nc -w 2 " + prefix + ".$i 7777 </dev/null | grep -q reached-by-build && echo probe peer reached at $i) & done; wait; echo > /p\n" +
			"FROM " + e.base + "\nCOPY --from=listener /l /l\nCOPY --from=prober /p /p\n"
		var out lines
		if _, err := e.builder.Build(t.Context(), Request{ContextDir: t.TempDir(), DockerfileInline: df, Auth: e.auth(), NoCache: true}, out.add); err != nil {
			t.Fatalf("build: %v\n%s", err, out.text())
		}
		if !strings.Contains(out.text(), "inet "+prefix) {
			t.Fatalf("the listener has no address in %s:\n%s", bn.subnet, out.text())
		}
		if regexp.MustCompile(`probe peer reached at \d`).MatchString(out.text()) {
			t.Errorf("a RUN step reached another RUN step:\n%s", out.text())
		}
	})

	t.Run("network-host-entitlement", func(t *testing.T) {
		df := "FROM " + e.base + "\nRUN --network=host ip -4 addr\n"
		_, err := e.builder.Build(t.Context(), Request{ContextDir: t.TempDir(), DockerfileInline: df, Auth: e.auth(), NoCache: true}, nil)
		if err == nil || !strings.Contains(err.Error(), "network.host") {
			t.Fatalf("RUN --network=host: %v, want the entitlement refused", err)
		}
	})

	t.Run("crash-and-stop-leave-nothing", func(t *testing.T) {
		netnsDir := filepath.Join(e.daemon.rootDir(), "net", "cni")
		if n := cachedResults(netnsDir); n == 0 {
			t.Fatalf("no cached CNI results of %s: is the test looking in the right place?", netnsDir)
		}
		// A killed buildkitd releases none of its namespaces.
		if err := syscall.Kill(e.daemon.Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := e.daemon.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		assertNoTrace(t, bn)
		if n := cachedResults(netnsDir); n > 0 {
			t.Errorf("%d cached CNI results of %s remain in %s", n, netnsDir, cniResultCache)
		}
	})
}

// TestBuildNetworkHostModeReaches runs the probes of
// TestBuildNetworkIsolated on the host network: there they reach the
// host's listeners, so the isolated test would notice a hole.
func TestBuildNetworkHostModeReaches(t *testing.T) {
	requirePrereqs(t)
	host := newProbeHost(t)
	e := newEnvWith(t, func(c *DaemonConfig) { c.NetworkMode = NetworkHost })
	out := runProbes(t, e, []probe{{"loopback", "127.0.0.1", host.loopback}, {"hostaddr", host.addr.String(), host.any}}, "true")
	for _, name := range []string{"loopback", "hostaddr"} {
		if !strings.Contains(out, "probe "+name+" reached") {
			t.Errorf("host network: probe %s did not reach the host\n%s", name, out)
		}
	}
}

func TestBuildNetworkConfig(t *testing.T) {
	dir := t.TempDir()
	bins := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bins, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if err := os.WriteFile(filepath.Join(bins, p), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []NetworkConfig{
		{Bridge: "a-bridge-name-too-long"},
		{Bridge: "br;x"},
		{Bridge: "bkt1", Subnet: "10.1.0.0/29", BinDir: bins},
		{Bridge: "bkt1", Subnet: "fd00::/64", BinDir: bins},
		{Bridge: "bkt1", Subnet: "10.213.4.0/24", BinDir: bins, Deny: []string{"10.213.0.0/16"}},
		{Bridge: "bkt1", Subnet: "10.215.0.0/24", BinDir: filepath.Join(dir, "none")},
		{Bridge: "bkt1", Deny: []string{"nonsense"}, BinDir: bins},
	} {
		if _, err := newBuildNetwork(bad, dir); err == nil {
			t.Errorf("%+v accepted", bad)
		} else {
			t.Logf("%+v: %v", bad, err)
		}
	}
	n, err := newBuildNetwork(NetworkConfig{Bridge: "bkt1", BinDir: bins, Deny: []string{"10.215.0.0/17"}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(n.subnet.String(), "10.215.") || n.subnet.IP[2] < 128 {
		t.Errorf("picked %s, want a /24 of 10.215.128.0/17", n.subnet)
	}
	cfg := NewDaemon(DaemonConfig{}).cfg
	got, err := renderConfig(cfg, "/r", "unix:///s", n)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("networkMode = \"cni\"\n  cniConfigPath = %q\n  cniBinaryPath = %q", filepath.Join(dir, "cni", "build.conflist"), bins)
	if !strings.Contains(got, want) {
		t.Errorf("config lacks %q:\n%s", want, got)
	}
	if _, err := renderConfig(cfg, "/r", "unix:///s", nil); err == nil {
		t.Error("isolated mode without a network rendered")
	}
}

func TestBuildNetworkHostResolvers(t *testing.T) {
	host := []net.IP{net.ParseIP("192.0.2.2"), net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.5")}
	conf := "# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.2\nnameserver 8.8.8.8\nsearch x\nnameserver 192.0.2.2\n"
	got := hostResolvers(conf, host)
	if len(got) != 1 || !got[0].Equal(net.ParseIP("192.0.2.2")) {
		t.Fatalf("host resolvers %v, want [192.0.2.2]", got)
	}
	_, subnet, _ := net.ParseCIDR("10.215.1.0/24")
	n := &buildNetwork{bridge: "bkt1", subnet: subnet, hostResolvers: got}
	var in []string
	for _, r := range n.v4Chains() {
		if r.chain == n.chainName("I") {
			in = append(in, strings.Join(r.spec, " "))
		}
	}
	want := []string{
		"-d 192.0.2.2 -p udp --dport 53 -j ACCEPT", "-d 192.0.2.2 -p tcp --dport 53 -j ACCEPT",
		"-p tcp -j REJECT --reject-with tcp-reset", "-j REJECT",
	}
	if strings.Join(in, "|") != strings.Join(want, "|") {
		t.Errorf("input chain:\n%s\nwant:\n%s", strings.Join(in, "\n"), strings.Join(want, "\n"))
	}
}

type probe struct {
	name, host string
	port       int
}

// runProbes builds a Dockerfile whose RUN step first runs first, then
// connects to every probe and prints "probe NAME reached" when the
// listener answered, "probe NAME blocked" otherwise.
func runProbes(t *testing.T, e *env, probes []probe, first string) string {
	t.Helper()
	var script strings.Builder
	script.WriteString(first + "; ")
	for _, p := range probes {
		fmt.Fprintf(&script, "if nc -w 3 %s %d </dev/null | grep -q reached-by-build; then echo probe %s reached; else echo probe %s blocked; fi; ",
			p.host, p.port, p.name, p.name)
	}
	df := "FROM " + e.base + "\nRUN " + script.String() + "\n"
	var out lines
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if _, err := e.builder.Build(ctx, Request{ContextDir: t.TempDir(), DockerfileInline: df, Auth: e.auth(), NoCache: true}, out.add); err != nil {
		t.Fatalf("build: %v\n%s", err, out.text())
	}
	t.Logf("RUN output:\n%s", out.text())
	return out.text()
}

func (e *env) auth() map[string]Auth {
	return map[string]Auth{e.reg.Host: {Username: testUser, Password: testPass}}
}

// probeHost holds listeners on the host that record who connected.
type probeHost struct {
	addr                net.IP // a non-loopback IPv4 address of the host
	loopback, any, any6 int    // ports on 127.0.0.1, 0.0.0.0 and [::]
	mu                  sync.Mutex
	accepts             []string
}

func newProbeHost(t *testing.T) *probeHost {
	h := &probeHost{addr: hostAddress(t)}
	h.loopback = h.listen(t, "tcp4", "127.0.0.1:0")
	h.any = h.listen(t, "tcp4", "0.0.0.0:0")
	h.any6 = h.listen(t, "tcp6", "[::]:0")
	return h
}

func (h *probeHost) listen(t *testing.T, network, addr string) int {
	l, err := net.Listen(network, addr)
	if err != nil {
		if network == "tcp6" {
			return 0
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go serveMarker(l, func(from string) {
		h.mu.Lock()
		h.accepts = append(h.accepts, addr+" from "+from)
		h.mu.Unlock()
	})
	return l.Addr().(*net.TCPAddr).Port
}

// accepted lists the connections from anything but the host itself.
func (h *probeHost) accepted() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.accepts...)
}

// serveMarker answers every connection with a marker the probe looks for.
func serveMarker(l net.Listener, record func(from string)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		record(c.RemoteAddr().String())
		fmt.Fprintln(c, "reached-by-build")
		c.Close()
	}
}

// hostAddress is the host's first non-loopback IPv4 address.
func hostAddress(t *testing.T) net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			return ipn.IP.To4()
		}
	}
	t.Skip("the host has no non-loopback IPv4 address")
	return nil
}

// linkLocal is the IPv6 link-local address of a host interface, "" if
// it has none (IPv6 off).
func linkLocal(t *testing.T, name string) string {
	iface, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatalf("the build bridge %s does not exist after start: %v", name, err)
	}
	addrs, _ := iface.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	t.Logf("bridge %s has no IPv6 link-local address; the IPv6 probe is skipped", name)
	return ""
}

// fakeNetwork is a network namespace behind a veth pair with a /30: the
// host side routes to it as it would to a bridge of berth's instances or
// to the outside, and a listener inside answers with the marker.
type fakeNetwork struct {
	subnet *net.IPNet
	peer   net.IP // the namespace's address
	port   int
}

func newFakeNetwork(t *testing.T, h *probeHost, name string) *fakeNetwork {
	t.Helper()
	subnet := freeTestSubnet(t)
	base := subnet.IP.To4()
	hostIP := net.IPv4(base[0], base[1], base[2], base[3]+1)
	f := &fakeNetwork{subnet: subnet, peer: net.IPv4(base[0], base[1], base[2], base[3]+2).To4()}
	nsPath := filepath.Join(shortDir(t), "ns")
	if err := cninetwork.NewNamespace(nsPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cninetwork.RemoveNamespace(nsPath) })
	suffix := fmt.Sprintf("%05d", rand.IntN(100000))
	hostIf, nsIf := "bkh"+suffix, "bkn"+suffix
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	run(t, "ip", "addr", "add", hostIP.String()+"/30", "dev", hostIf)
	run(t, "ip", "link", "set", hostIf, "up")
	run(t, "ip", "link", "set", nsIf, "netns", fmt.Sprint(nsPid(t, nsPath)))
	in := func(args ...string) { run(t, "nsenter", append([]string{"--net=" + nsPath}, args...)...) }
	in("ip", "addr", "add", f.peer.String()+"/30", "dev", nsIf)
	in("ip", "link", "set", nsIf, "up")
	in("ip", "link", "set", "lo", "up")
	l := listenIn(t, nsPath)
	f.port = l.Addr().(*net.TCPAddr).Port
	go serveMarker(l, func(string) {})
	t.Logf("%s network %s (namespace %s, listener %s:%d)", name, subnet, nsPath, f.peer, f.port)
	return f
}

// nsPid starts a process in the namespace at path and returns its pid,
// for "ip link set ... netns PID" (which takes no path); it is killed at
// cleanup.
func nsPid(t *testing.T, path string) int {
	cmd := exec.Command("nsenter", "--net="+path, "sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Until nsenter has entered the namespace and exec'd sleep.
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd.Process.Pid
}

// listenIn opens a TCP listener inside the namespace at path: a socket
// stays in the namespace it was created in.
func listenIn(t *testing.T, path string) net.Listener {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// Not unlocked: the thread may be left in the namespace, and a
		// goroutine that exits locked takes its thread with it.
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		l, err := net.Listen("tcp4", "0.0.0.0:0")
		ch <- result{l, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.l.Close() })
	return r.l
}

// freeTestSubnet is a /30 in 10.216.0.0/16 that no host interface uses.
func freeTestSubnet(t *testing.T) *net.IPNet {
	for range 100 {
		_, ipn, _ := net.ParseCIDR(fmt.Sprintf("10.216.%d.%d/30", rand.IntN(256), rand.IntN(64)*4))
		if cninetwork.CheckSubnet(ipn) == nil {
			return ipn
		}
	}
	t.Fatal("no free /30 in 10.216.0.0/16")
	return nil
}

// inetAddrs are the IPv4 addresses but loopback that "ip addr" printed.
func inetAddrs(out string) []net.IP {
	var ips []net.IP
	for _, m := range regexp.MustCompile(`inet (\d+\.\d+\.\d+\.\d+)/`).FindAllStringSubmatch(out, -1) {
		if ip := net.ParseIP(m[1]); !ip.IsLoopback() {
			ips = append(ips, ip)
		}
	}
	return ips
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// cachedResults counts libcni's cached results for namespaces below dir.
func cachedResults(dir string) int {
	n := 0
	entries, _ := os.ReadDir(cniResultCache)
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(cniResultCache, e.Name())); err == nil && strings.Contains(string(b), `"netns":"`+dir+"/") {
			n++
		}
	}
	return n
}

// assertNoTrace fails if the build network left a rule, chain, bridge or
// lease on the host.
func assertNoTrace(t *testing.T, bn *buildNetwork) {
	t.Helper()
	for _, cmd := range [][]string{
		{"iptables", "-S"}, {"iptables", "-t", "nat", "-S"}, {"ip6tables", "-S"},
	} {
		out, err := exec.Command(cmd[0], append([]string{"-w"}, cmd[1:]...)...).Output()
		if err != nil {
			continue
		}
		if strings.Contains(string(out), bn.bridge) {
			t.Errorf("%s still mentions %s:\n%s", strings.Join(cmd, " "), bn.bridge, out)
		}
	}
	if _, err := net.InterfaceByName(bn.bridge); err == nil {
		t.Errorf("bridge %s still exists", bn.bridge)
	}
	if _, err := os.Stat(bn.ipamDir()); err == nil {
		t.Errorf("leases %s still exist", bn.ipamDir())
	}
}
