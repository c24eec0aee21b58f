package cninetwork

import (
	"fmt"
	"net"
)

// OverlapError says that a bridge subnet collides with an address the host
// already uses. Handing out such addresses would make the host route
// traffic for that network into the bridge (or the other way round) and
// cut it off from whatever is on the other interface.
type OverlapError struct {
	Subnet    *net.IPNet // the bridge subnet asked for
	Interface string     // the host interface that has Address
	Address   *net.IPNet // the colliding address with its prefix
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("bridge subnet %s overlaps address %s of host interface %s; choose a subnet that is not used on this machine",
		e.Subnet, e.Address, e.Interface)
}

// CheckSubnet returns an *OverlapError if subnet overlaps the network of
// any address on the host's interfaces, except those named in ignore (the
// bridge itself, which carries the gateway address).
func CheckSubnet(subnet *net.IPNet, ignore ...string) error {
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("cninetwork: list host interfaces: %w", err)
	}
	skip := make(map[string]bool, len(ignore))
	for _, name := range ignore {
		skip[name] = true
	}
	for _, iface := range ifaces {
		if skip[iface.Name] {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			return fmt.Errorf("cninetwork: addresses of %s: %w", iface.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil {
				continue
			}
			if Overlaps(subnet, ipn) {
				return &OverlapError{Subnet: subnet, Interface: iface.Name, Address: ipn}
			}
		}
	}
	return nil
}

// Overlaps reports whether two IPv4 networks share any address.
func Overlaps(a, b *net.IPNet) bool {
	an := &net.IPNet{IP: a.IP.Mask(a.Mask), Mask: a.Mask}
	bn := &net.IPNet{IP: b.IP.Mask(b.Mask), Mask: b.Mask}
	return an.Contains(bn.IP) || bn.Contains(an.IP)
}
