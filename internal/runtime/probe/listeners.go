package probe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Listener is one listening TCP socket of an instance.
type Listener struct {
	IP   net.IP
	Port int
}

// tcpListen is the state /proc/net/tcp writes for a listening socket.
const tcpListen = "0A"

// ParseListeners reads the listening sockets out of the text of a
// /proc/<pid>/net/tcp or tcp6 file. Addresses there are hex in the host's
// byte order (each 32-bit word), ports are hex in network order.
func ParseListeners(procNetTCP []byte) ([]Listener, error) {
	var out []Listener
	sc := bufio.NewScanner(bytes.NewReader(procNetTCP))
	first := true
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if first {
			first = false
			if len(fields) > 0 && fields[0] == "sl" {
				continue // the header line
			}
		}
		if len(fields) < 4 {
			continue
		}
		if fields[3] != tcpListen {
			continue
		}
		l, err := parseLocal(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// parseLocal parses "0100007F:1388" (IPv4) or a 32-digit IPv6 address.
func parseLocal(s string) (Listener, error) {
	addr, port, ok := strings.Cut(s, ":")
	if !ok {
		return Listener{}, fmt.Errorf("local address %q has no port", s)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return Listener{}, fmt.Errorf("port %q: %w", port, err)
	}
	raw, err := hex.DecodeString(addr)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return Listener{}, fmt.Errorf("address %q is not 8 or 32 hex digits", addr)
	}
	// The kernel prints each 32-bit word as a host-order integer: turn
	// the words back into network order.
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(ip[i:], binary.NativeEndian.Uint32(raw[i:]))
	}
	return Listener{IP: ip, Port: int(p)}, nil
}

// Refused reports whether a probe failed because nothing accepted its
// connection: the case where what the instance listens on tells why.
func Refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// PortMismatch says, in words a user can act on, why nothing answers on
// port in an instance that listens on ls; "" when something listens on
// port on an address the outside can reach (the refusal has another cause).
func PortMismatch(port int, ls []Listener) string {
	var open, local []int // ports reachable from outside, and loopback-only
	onLoopback := false
	for _, l := range ls {
		if l.IP.IsLoopback() {
			if l.Port == port {
				onLoopback = true
			}
			local = appendPort(local, l.Port)
			continue
		}
		if l.Port == port {
			return ""
		}
		open = appendPort(open, l.Port)
	}
	// A port on loopback that is also open elsewhere is simply open.
	local = slices.DeleteFunc(local, func(p int) bool { return slices.Contains(open, p) })
	switch {
	case onLoopback:
		return fmt.Sprintf("the app listens on %d only on 127.0.0.1 inside the container, so nothing outside can reach it: make it listen on 0.0.0.0", port)
	case len(open) == 1:
		return fmt.Sprintf("the app listens on %d, not on %d: set the component's port to %d, or make the app listen on $PORT", open[0], port, open[0])
	case len(open) > 1:
		return fmt.Sprintf("the app listens on %s, not on %d: set the component's port to one of them, or make the app listen on $PORT", portList(open), port)
	case len(local) > 0:
		return fmt.Sprintf("the app listens on %s only on 127.0.0.1 inside the container, not on %d, so nothing outside can reach it: make it listen on 0.0.0.0 and on $PORT", portList(local), port)
	}
	return fmt.Sprintf("nothing in the instance listens on any TCP port, so nothing answers on %d: the app may still be starting or failed to bind; read its log", port)
}

func appendPort(ports []int, p int) []int {
	if slices.Contains(ports, p) {
		return ports
	}
	return append(ports, p)
}

// portList is "5000", "5000 and 9000" or "5000, 9000 and 9100", in order.
func portList(ports []int) string {
	ports = slices.Sorted(slices.Values(ports))
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// ExplainRefused adds what the instance listens on to a probe's
// connection-refused error; other errors, or an instance whose listeners
// cannot be read, keep the error as it was.
func ExplainRefused(err error, port int, ls []Listener, lsErr error) error {
	if !Refused(err) || lsErr != nil {
		return err
	}
	msg := PortMismatch(port, ls)
	if msg == "" {
		return err
	}
	return &MismatchError{Msg: msg, Err: err}
}

// MismatchError is a refused probe with the explanation in front.
type MismatchError struct {
	Msg string
	Err error
}

func (e *MismatchError) Error() string { return e.Msg }
func (e *MismatchError) Unwrap() error { return e.Err }
