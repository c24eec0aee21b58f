package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/berth-platform/berth/internal/model"
)

// Real lines from a little-endian Linux: busybox httpd on 0.0.0.0:5000,
// a loopback-only listener on 127.0.0.1:6379, an established connection
// (state 01) and a TIME_WAIT one (06) that must not count.
const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 81234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 81235 1 0000000000000000 100 0 0 10 0
   2: 0A000205:1388 0A000101:C350 01 00000000:00000000 00:00000000 00000000     0        0 81236 1 0000000000000000 20 4 30 10 -1
   3: 0A000205:1F90 0A000101:C351 06 00000000:00000000 03:00000F9E 00000000     0        0 0 3 0000000000000000
`

// tcp6: [::]:8000, [::1]:9229, and ::ffff:127.0.0.1:7000 (v4-mapped loopback).
const procNetTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:240D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9002 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1B58 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9003 1 0000000000000000 100 0 0 10 0
`

func TestParseListenersV4(t *testing.T) {
	ls, err := ParseListeners([]byte(procNetTCP))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(ls)
	if want := "[{0.0.0.0 5000} {127.0.0.1 6379}]"; got != want {
		t.Fatalf("listeners = %s, want %s (only state 0A, addresses in network order)", got, want)
	}
}

func TestParseListenersV6(t *testing.T) {
	ls, err := ParseListeners([]byte(procNetTCP6))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(ls)
	if want := "[{:: 8000} {::1 9229} {127.0.0.1 7000}]"; got != want {
		t.Fatalf("listeners = %s, want %s", got, want)
	}
	for _, l := range ls[1:] {
		if !l.IP.IsLoopback() {
			t.Errorf("%v should be loopback", l)
		}
	}
}

func TestParseListenersRejectsGarbage(t *testing.T) {
	for _, line := range []string{
		"   0: 0000000G:1388 00000000:0000 0A",
		"   0: 000000:1388 00000000:0000 0A",
		"   0: 00000000:XYZ 00000000:0000 0A",
		"   0: 00000000 00000000:0000 0A",
	} {
		if _, err := ParseListeners([]byte(line)); err == nil {
			t.Errorf("%q parsed without error", line)
		}
	}
	if ls, err := ParseListeners(nil); err != nil || len(ls) != 0 {
		t.Errorf("empty file: %v, %v", ls, err)
	}
}

func l(ip string, port int) Listener { return Listener{IP: net.ParseIP(ip), Port: port} }

func TestPortMismatch(t *testing.T) {
	for _, c := range []struct {
		name string
		ls   []Listener
		want string
	}{
		{"listens elsewhere", []Listener{l("0.0.0.0", 5000)},
			"the app listens on 5000, not on 8080: set the component's port to 5000, or make the app listen on $PORT"},
		{"v4 and v6 of one port count once", []Listener{l("0.0.0.0", 5000), l("::", 5000)},
			"the app listens on 5000, not on 8080: set the component's port to 5000"},
		{"several ports", []Listener{l("::", 9000), l("0.0.0.0", 5000)},
			"the app listens on 5000 and 9000, not on 8080: set the component's port to one of them"},
		{"loopback only on the port", []Listener{l("127.0.0.1", 8080)},
			"the app listens on 8080 only on 127.0.0.1 inside the container, so nothing outside can reach it: make it listen on 0.0.0.0"},
		{"loopback only elsewhere", []Listener{l("::1", 3000)},
			"the app listens on 3000 only on 127.0.0.1 inside the container, not on 8080"},
		{"nothing", nil, "nothing in the instance listens on any TCP port"},
		{"listens on the port", []Listener{l("0.0.0.0", 8080), l("0.0.0.0", 5000)}, ""},
		{"listens on the instance's address", []Listener{l("10.4.0.7", 8080)}, ""},
	} {
		got := PortMismatch(8080, c.ls)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: PortMismatch = %q, want it to contain %q", c.name, got, c.want)
		}
	}
}

// A real refused probe gets the explanation; the refusal stays its cause.
func TestExplainRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens on port now
	probeErr := Check(context.Background(), &model.Probe{Type: model.ProbeTCP, Port: port}, "127.0.0.1", nil)
	if !Refused(probeErr) {
		t.Fatalf("probe of a closed port: %v, want connection refused", probeErr)
	}
	err = ExplainRefused(probeErr, port, []Listener{l("0.0.0.0", 5000)}, nil)
	if want := fmt.Sprintf("the app listens on 5000, not on %d", port); !strings.Contains(err.Error(), want) {
		t.Fatalf("explained error %q lacks %q", err, want)
	}
	if !Refused(err) {
		t.Error("the explained error lost its cause")
	}
	if got := ExplainRefused(probeErr, port, nil, errors.New("no such process")); got != probeErr {
		t.Errorf("unreadable listeners changed the error: %v", got)
	}
	other := errors.New("http probe GET / on port 8080 answered 500")
	if got := ExplainRefused(other, 8080, []Listener{l("0.0.0.0", 5000)}, nil); got != other {
		t.Errorf("a non-refusal changed: %v", got)
	}
}
