package cninetwork

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// requireRoot skips outside CI when the test cannot work here, and fails
// in CI, where the prerequisites are part of the contract.
func requireRoot(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if _, err := os.Stat(filepath.Join(DefaultBinDir, "bridge")); err != nil {
		missing = append(missing, "CNI plugins in "+DefaultBinDir+" (apt-get install containernetworking-plugins)")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		missing = append(missing, "iptables")
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// testNetwork makes a network with a random bridge name and a random /24
// in 10.200.0.0/13 that does not collide with the host.
func testNetwork(t *testing.T) *Network {
	t.Helper()
	dir := t.TempDir()
	for range 20 {
		a, _ := rand.Int(rand.Reader, big.NewInt(8))
		b, _ := rand.Int(rand.Reader, big.NewInt(256))
		n, err := New(Config{
			Bridge:   "bt" + randHex(6),
			Subnet:   fmt.Sprintf("10.%d.%d.0/24", 200+a.Int64(), b.Int64()),
			StateDir: dir,
		})
		var overlap *OverlapError
		if errors.As(err, &overlap) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := n.Destroy(context.Background()); err != nil {
				t.Errorf("destroy: %v", err)
			}
			if _, err := netlink.LinkByName(n.Bridge()); err == nil {
				t.Errorf("bridge %s still exists", n.Bridge())
			}
		})
		return n
	}
	t.Fatal("no free subnet found")
	return nil
}

func testNamespace(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ns")
	if err := NewNamespace(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveNamespace(p); err != nil {
			t.Error(err)
		}
	})
	return p
}

// inNamespace runs f on a thread inside the namespace at path. The thread
// is thrown away afterwards.
func inNamespace(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func masqueradeRules(t *testing.T, netName string) string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	var hits []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, fmt.Sprintf(`name: \"%s\"`, netName)) {
			hits = append(hits, l)
		}
	}
	return strings.Join(hits, "\n")
}

func TestOverlapNamesBoth(t *testing.T) {
	_, lo, _ := net.ParseCIDR("127.0.0.0/16")
	err := CheckSubnet(lo)
	var oe *OverlapError
	if !errors.As(err, &oe) {
		t.Fatalf("want OverlapError, got %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "127.0.0.0/16") || !strings.Contains(msg, "lo") || !strings.Contains(msg, "127.0.0.1/8") {
		t.Fatalf("message does not name both sides: %s", msg)
	}
	_, err = New(Config{Bridge: "btx", Subnet: "127.1.0.0/24", StateDir: t.TempDir()})
	if !errors.As(err, &oe) {
		t.Fatalf("New: want OverlapError, got %v", err)
	}

	cases := []struct {
		a, b string
		want bool
	}{
		{"10.0.0.0/24", "10.0.0.5/32", true},
		{"10.0.0.0/24", "10.0.0.0/16", true},
		{"10.0.1.0/24", "10.0.0.0/24", false},
		{"192.168.1.0/24", "10.0.0.0/8", false},
	}
	for _, c := range cases {
		_, a, _ := net.ParseCIDR(c.a)
		_, b, _ := net.ParseCIDR(c.b)
		if got := Overlaps(a, b); got != c.want {
			t.Errorf("Overlaps(%s, %s) = %v", c.a, c.b, got)
		}
	}
}

func TestSetupTeardown(t *testing.T) {
	requireRoot(t)
	n := testNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ns := testNamespace(t)
	id := "c-" + randHex(8)
	ip, err := n.Setup(ctx, id, ns)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Subnet().Contains(ip) || ip.Equal(n.Gateway()) {
		t.Fatalf("ip %s not a host address of %s", ip, n.Subnet())
	}
	t.Logf("container %s got %s on %s (gateway %s)", id, ip, n.Bridge(), n.Gateway())

	// Idempotent: the same container and namespace keep their address.
	again, err := n.Setup(ctx, id, ns)
	if err != nil || !again.Equal(ip) {
		t.Fatalf("second Setup: %v %v, want %s", again, err, ip)
	}

	// The bridge carries the gateway address.
	br, err := netlink.LinkByName(n.Bridge())
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := netlink.AddrList(br, netlink.FAMILY_V4)
	if len(addrs) == 0 || !addrs[0].IP.Equal(n.Gateway()) {
		t.Fatalf("bridge addresses %v, want %s", addrs, n.Gateway())
	}

	// Host -> namespace: a listener inside answers on the instance address.
	var ln net.Listener
	if err := inNamespace(ns, func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(ip.String(), "8080"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.WriteString(c, "hello from netns\n")
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp4", net.JoinHostPort(ip.String(), "8080"), 5*time.Second)
	if err != nil {
		t.Fatalf("dial instance: %v", err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "hello from netns\n" {
		t.Fatalf("got %q", b)
	}

	// Namespace -> host through the gateway; loopback is up inside.
	hostLn, err := net.Listen("tcp4", net.JoinHostPort(n.Gateway().String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	go func() {
		c, err := hostLn.Accept()
		if err == nil {
			c.Close()
		}
	}()
	if err := inNamespace(ns, func() error {
		c, err := net.DialTimeout("tcp4", hostLn.Addr().String(), 5*time.Second)
		if err != nil {
			return fmt.Errorf("dial gateway: %w", err)
		}
		c.Close()
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("loopback: %w", err)
		}
		return l.Close()
	}); err != nil {
		t.Fatal(err)
	}

	if rules := masqueradeRules(t, n.Name()); rules == "" {
		t.Fatal("no masquerade rule was added")
	}

	if err := n.Teardown(ctx, id, ns); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, id, ns); err != nil {
		t.Fatalf("second teardown: %v", err)
	}
	if err := n.Teardown(ctx, "never-seen", "/nonexistent/ns"); err != nil {
		t.Fatalf("teardown of unknown container: %v", err)
	}
	if rules := masqueradeRules(t, n.Name()); rules != "" {
		t.Fatalf("masquerade rules left:\n%s", rules)
	}
	leases, _ := filepath.Glob(filepath.Join(n.ipamDir(), n.Name(), "1*"))
	if len(leases) != 0 {
		t.Fatalf("IPAM leases left: %v", leases)
	}
}

// TestTeardownAfterNamespaceGone covers an instance whose namespace
// vanished before teardown: the masquerade rules must still go.
func TestTeardownAfterNamespaceGone(t *testing.T) {
	requireRoot(t)
	n := testNetwork(t)
	ctx := context.Background()
	ns := filepath.Join(t.TempDir(), "ns")
	if err := NewNamespace(ns); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Setup(ctx, "gone", ns); err != nil {
		t.Fatal(err)
	}
	if err := RemoveNamespace(ns); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, "gone", ns); err != nil {
		t.Fatal(err)
	}
	if rules := masqueradeRules(t, n.Name()); rules != "" {
		t.Fatalf("masquerade rules left:\n%s", rules)
	}
}

func TestConcurrentSetup(t *testing.T) {
	requireRoot(t)
	n := testNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const count = 6
	var (
		mu  sync.Mutex
		ips = map[string]string{}
		wg  sync.WaitGroup
	)
	nss := make([]string, count)
	for i := range nss {
		nss[i] = testNamespace(t)
	}
	errs := make(chan error, 2*count)
	for i := range count {
		wg.Go(func() {
			id := fmt.Sprintf("c%d", i)
			ip, err := n.Setup(ctx, id, nss[i])
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if other, dup := ips[ip.String()]; dup {
				errs <- fmt.Errorf("%s and %s both got %s", other, id, ip)
			}
			ips[ip.String()] = id
		})
	}
	wg.Wait()
	for i := range count {
		wg.Go(func() {
			if err := n.Teardown(ctx, fmt.Sprintf("c%d", i), nss[i]); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(ips) != count {
		t.Fatalf("got %d addresses, want %d", len(ips), count)
	}
}

// TestSetupAfterNamespaceRecreated: same container ID and path, but a new
// namespace behind it (a container replaced without Teardown). Setup must
// attach the new one, not trust its cache.
func TestSetupAfterNamespaceRecreated(t *testing.T) {
	requireRoot(t)
	n := testNetwork(t)
	ctx := context.Background()
	ns := testNamespace(t)
	if _, err := n.Setup(ctx, "re", ns); err != nil {
		t.Fatal(err)
	}
	if err := RemoveNamespace(ns); err != nil {
		t.Fatal(err)
	}
	if err := NewNamespace(ns); err != nil {
		t.Fatal(err)
	}
	ip, err := n.Setup(ctx, "re", ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := inNamespace(ns, func() error {
		iface, err := net.InterfaceByName(ifName)
		if err != nil {
			return err
		}
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) {
				return nil
			}
		}
		return fmt.Errorf("eth0 has %v, want %s", addrs, ip)
	}); err != nil {
		t.Fatalf("new namespace not attached: %v", err)
	}
	if err := n.Teardown(ctx, "re", ns); err != nil {
		t.Fatal(err)
	}
	if rules := masqueradeRules(t, n.Name()); rules != "" {
		t.Fatalf("masquerade rules left:\n%s", rules)
	}
}
