package worker

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/netguard"
)

// Endpoints stored before the API's wall (or allowed before a restart
// without the range) are refused again where they are used: the gateway
// gets no loopback address and no name resolving to one, and the health
// check never dials them.
func TestThirdPartyGuardAtUseTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialled := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialled <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// The allowed endpoint is on loopback too (tests send nothing
	// elsewhere), inside the one range the policy allows.
	okLn, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	defer okLn.Close()
	go func() {
		for {
			c, err := okLn.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	outside := okLn.Addr().String()
	allowed := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}

	for _, probe := range []*model.Probe{nil, {Type: model.ProbeTCP, PeriodSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1}} {
		tp := NewThirdParty(nil)
		tp.Guard = &netguard.Policy{Allowed: allowed, HostAddrs: func() []netip.Addr { return nil }}
		c := &model.Component{ID: "cmp-guard", Alias: "ext", Kind: model.KindThirdParty, Desired: model.DesiredRunning,
			Endpoints: []string{"127.0.0.1:" + port, "localhost:" + port, outside}, Readiness: probe}
		tp.Apply(context.Background(), c)
		time.Sleep(1500 * time.Millisecond)
		if eps, _ := tp.Endpoints(c.ID); len(eps) != 1 || eps[0] != outside {
			t.Errorf("probe %v: the gateway gets %v, want only %s", probe != nil, eps, outside)
		}
		var refused int
		for _, in := range tp.Instances(c) {
			if in.ID != outside && (in.Status == model.InstanceRunning || !strings.Contains(in.Message, "--allow-endpoint-cidr")) {
				t.Errorf("probe %v: %s shows %s %q", probe != nil, in.ID, in.Status, in.Message)
			}
			if in.ID != outside {
				refused++
			}
		}
		if refused != 2 {
			t.Errorf("probe %v: %d refused endpoints shown, want 2", probe != nil, refused)
		}
		tp.Close()
	}
	select {
	case <-dialled:
		t.Error("the health check dialled a refused endpoint")
	default:
	}
}
