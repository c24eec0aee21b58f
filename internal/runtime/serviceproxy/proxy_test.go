package serviceproxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
)

// backend answers every connection with its name.
func backend(t *testing.T, name string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, name)
			c.Close()
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }
}

func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestBalancesAndSkipsDeadBackends(t *testing.T) {
	a, stopA := backend(t, "a")
	b, stopB := backend(t, "b")
	defer stopB()
	p, err := Listen("test", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	if got := ask(t, p.Addr()); got != "" {
		t.Fatalf("with no backend the connection must close at once, got %q", got)
	}
	p.SetBackends([]string{a, b})
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		seen[ask(t, p.Addr())]++
	}
	if seen["a"] != 10 || seen["b"] != 10 {
		t.Fatalf("round robin over two: %v", seen)
	}
	stopA()
	for i := 0; i < 10; i++ {
		if got := ask(t, p.Addr()); got != "b" {
			t.Fatalf("a is dead, want b, got %q", got)
		}
	}
}

func TestCloseCutsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			buf := make([]byte, 1)
			_, _ = c.Read(buf) // hold the connection open
		}
	}()
	p, err := Listen("test", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.SetBackends([]string{ln.Addr().String()})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "") // connection is open and proxied
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	<-done
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err == nil {
		t.Fatal("connection still open after Close")
	}
}

// A client the policy refuses is cut before any backend is dialled; the
// policy sees the client's own address.
func TestPolicyRefusesClients(t *testing.T) {
	dialled := make(chan struct{}, 10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialled <- struct{}{}
			fmt.Fprintln(c, "secret")
			c.Close()
		}
	}()
	p, err := Listen("test", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetBackends([]string{ln.Addr().String()})

	asked := make(chan net.IP, 1)
	p.SetPolicy(func(remote net.IP) bool { asked <- remote; return false })
	// The reset may even beat the dial's return.
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if line != "" {
			t.Fatalf("refused client got %q", line)
		}
	}
	if seen := <-asked; !seen.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("policy saw %v, want the client's 127.0.0.1", seen)
	}
	select {
	case <-dialled:
		t.Fatal("a backend was dialled for a refused client")
	default:
	}

	p.SetPolicy(func(net.IP) bool { return true })
	if got := ask(t, p.Addr()); got != "secret" {
		t.Fatalf("admitted client got %q", got)
	}
}
