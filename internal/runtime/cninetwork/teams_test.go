package cninetwork

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func testTeamNetworks(t *testing.T) *TeamNetworks {
	t.Helper()
	dir := t.TempDir()
	for range 20 {
		a, _ := rand.Int(rand.Reader, big.NewInt(8))
		b, _ := rand.Int(rand.Reader, big.NewInt(256))
		tn, err := NewTeamNetworks(context.Background(), TeamConfig{
			Bridge: "bt" + randHex(6), Subnet: fmt.Sprintf("10.%d.%d.0/24", 200+a.Int64(), b.Int64()), StateDir: dir})
		if errors.As(err, new(*OverlapError)) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := tn.Destroy(context.Background()); err != nil {
				t.Errorf("destroy: %v", err)
			}
			out, _ := exec.Command("iptables", "-w", "-S").CombinedOutput()
			if strings.Contains(string(out), tn.Chain()) {
				t.Errorf("iptables still mentions %s", tn.Chain())
			}
			if _, err := net.InterfaceByName(tn.bridgeName(0)); err == nil {
				t.Errorf("bridge %s still exists", tn.bridgeName(0))
			}
		})
		return tn
	}
	t.Fatal("no free subnet")
	return nil
}

// Two teams get disjoint blocks on bridges of their own; a namespace of
// team 0 connects to another of team 0 and not to one of team 1.
func TestTeamNetworksKeepTeamsApart(t *testing.T) {
	requireRoot(t)
	tn := testTeamNetworks(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	team0, err := tn.Network(0)
	if err != nil {
		t.Fatal(err)
	}
	team1, err := tn.Network(1)
	if err != nil {
		t.Fatal(err)
	}
	if team0.Bridge() == team1.Bridge() || Overlaps(team0.Subnet(), team1.Subnet()) || !tn.Range().Contains(team1.Subnet().IP) {
		t.Fatalf("team networks %s %s and %s %s are not apart inside %s", team0.Bridge(), team0.Subnet(), team1.Bridge(), team1.Subnet(), tn.Range())
	}
	attach := func(n *Network) (string, net.IP) {
		ns := testNamespace(t)
		id := "c-" + randHex(8)
		ip, err := n.Setup(ctx, id, ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Teardown(context.Background(), id, ns) })
		return ns, ip
	}
	client, _ := attach(team0)
	peerNS, peer := attach(team0)
	otherNS, other := attach(team1)
	listen := func(ns string, ip net.IP) {
		var ln net.Listener
		if err := inNamespace(ns, func() (err error) {
			ln, err = net.Listen("tcp4", net.JoinHostPort(ip.String(), "8080"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	listen(peerNS, peer)
	listen(otherNS, other)
	dial := func(ip net.IP) error {
		return inNamespace(client, func() error {
			c, err := net.DialTimeout("tcp4", net.JoinHostPort(ip.String(), "8080"), 2*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	if err := dial(peer); err != nil {
		t.Fatalf("same team: %v", err)
	}
	if err := dial(other); err == nil {
		t.Fatalf("team 0 (%s) connected to team 1's %s", team0.Subnet(), other)
	}
}
