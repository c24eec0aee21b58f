package containerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/berth-platform/berth/internal/runtime/serviceproxy"
)

// services gives every component a stable service IP, held on an
// interface of the host of its own, and a proxy per inner port on it that balances
// over ready instances: kube-proxy for one machine. Containers reach the
// IP through their bridge gateway; allocations survive restarts in a file.
type services struct {
	link   string
	subnet *net.IPNet
	file   string

	mu      sync.Mutex
	alloc   map[string]string // component id -> IP
	proxies map[string]*serviceproxy.Proxy

	// ready holds each port's ready backends for the gateway, read
	// without taking mu.
	ready sync.Map // endpointKey -> []string

	// allow says who may connect to a component's address.
	allow func(componentID string, remote net.IP) bool
}

type endpointKey struct {
	component string
	port      int
}

func newServices(link, cidr, stateDir string, allow func(componentID string, remote net.IP) bool) (*services, error) {
	_, subnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("service subnet %q: %w", cidr, err)
	}
	s := &services{link: link, subnet: subnet, file: filepath.Join(stateDir, "services.json"),
		alloc: map[string]string{}, proxies: map[string]*serviceproxy.Proxy{}, allow: allow}
	if b, err := os.ReadFile(s.file); err == nil {
		if err := json.Unmarshal(b, &s.alloc); err != nil {
			return nil, fmt.Errorf("read %s: %w", s.file, err)
		}
	}
	if err := s.ensureLink(); err != nil {
		return nil, err
	}
	for _, ip := range s.alloc {
		if err := s.addAddr(ip); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *services) ensureLink() error {
	if _, err := netlink.LinkByName(s.link); err == nil {
		return nil
	}
	la := netlink.NewLinkAttrs()
	la.Name = s.link
	// A bridge with no ports holds the addresses: unlike a dummy link it
	// needs no extra kernel module, and its addresses are local all the same.
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create service interface %s: %w", s.link, err)
	}
	l, err := netlink.LinkByName(s.link)
	if err != nil {
		return fmt.Errorf("service interface %s: %w", s.link, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring up %s: %w", s.link, err)
	}
	return nil
}

func (s *services) addAddr(ip string) error {
	l, err := netlink.LinkByName(s.link)
	if err != nil {
		return fmt.Errorf("service interface %s: %w", s.link, err)
	}
	addr, err := netlink.ParseAddr(ip + "/32")
	if err != nil {
		return err
	}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("add service address %s: %w", ip, err)
	}
	return nil
}

// ip returns the component's service IP, allocating one on first use.
func (s *services) ip(componentID string) (string, error) {
	if ip, ok := s.alloc[componentID]; ok {
		return ip, nil
	}
	used := map[string]bool{}
	for _, ip := range s.alloc {
		used[ip] = true
	}
	base := s.subnet.IP.To4()
	ones, bits := s.subnet.Mask.Size()
	size := 1 << (bits - ones)
	for i := 1; i < size-1; i++ {
		ip := net.IPv4(base[0], base[1], base[2]+byte((int(base[3])+i)>>8), byte(int(base[3])+i)).String()
		if used[ip] || !s.subnet.Contains(net.ParseIP(ip)) {
			continue
		}
		if err := s.addAddr(ip); err != nil {
			return "", err
		}
		s.alloc[componentID] = ip
		return ip, s.save()
	}
	return "", fmt.Errorf("service subnet %s is full; give berth a larger one", s.subnet)
}

func (s *services) save() error {
	b, _ := json.Marshal(s.alloc)
	tmp := s.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.file)
}

func key(componentID string, port int) string { return componentID + "/" + strconv.Itoa(port) }

// address is the stable host:port of a component's port.
func (s *services) address(componentID string, port int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.proxy(componentID, port)
	if err != nil {
		return "", err
	}
	return p.Addr(), nil
}

func (s *services) proxy(componentID string, port int) (*serviceproxy.Proxy, error) {
	if p, ok := s.proxies[key(componentID, port)]; ok {
		return p, nil
	}
	ip, err := s.ip(componentID)
	if err != nil {
		return nil, err
	}
	p, err := serviceproxy.Listen(componentID, net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	if s.allow != nil {
		p.SetPolicy(func(remote net.IP) bool { return s.allow(componentID, remote) })
	}
	s.proxies[key(componentID, port)] = p
	return p, nil
}

// set points a port's proxy at backends.
func (s *services) set(componentID string, port int, backends []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready.Store(endpointKey{componentID, port}, append([]string(nil), backends...))
	p, err := s.proxy(componentID, port)
	if err != nil {
		return
	}
	p.SetBackends(backends)
}

// endpoints returns what set stored last; callers must not modify it.
func (s *services) endpoints(componentID string, port int) []string {
	v, _ := s.ready.Load(endpointKey{componentID, port})
	eps, _ := v.([]string)
	return eps
}

// remove closes a component's proxies and frees its IP.
func (s *services) remove(componentID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready.Range(func(k, _ any) bool {
		if k.(endpointKey).component == componentID {
			s.ready.Delete(k)
		}
		return true
	})
	for k, p := range s.proxies {
		if len(k) > len(componentID) && k[:len(componentID)+1] == componentID+"/" {
			p.Close()
			delete(s.proxies, k)
		}
	}
	if ip, ok := s.alloc[componentID]; ok {
		if l, err := netlink.LinkByName(s.link); err == nil {
			if addr, err := netlink.ParseAddr(ip + "/32"); err == nil {
				_ = netlink.AddrDel(l, addr)
			}
		}
		delete(s.alloc, componentID)
		_ = s.save()
	}
}

// close stops every proxy (berth shutting down); the link stays for the
// next start.
func (s *services) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, p := range s.proxies {
		p.Close()
		delete(s.proxies, k)
	}
}

// destroy removes the link too (tests).
func (s *services) destroy() {
	s.close()
	if l, err := netlink.LinkByName(s.link); err == nil {
		_ = netlink.LinkDel(l)
	}
}
