package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/berth-platform/berth/internal/api"
	"github.com/berth-platform/berth/internal/gateway"
	"github.com/berth-platform/berth/internal/gateway/acme"
	"github.com/berth-platform/berth/internal/store"
	"github.com/berth-platform/berth/internal/worker"
)

// startGateway opens the gateway's listeners and publishes what the store
// holds before the API takes requests.
func startGateway(ctx context.Context, cfg Config, dir *dataDir, st store.Store, endpoints worker.EndpointSource, hints worker.HintSource) (*gateway.Gateway, *worker.GatewaySync, *api.GatewayInfo, error) {
	accessLog, err := os.OpenFile(dir.file("logs", "gateway-access.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, nil, err
	}
	issuer, err := newIssuer(cfg, dir)
	if err != nil {
		accessLog.Close()
		return nil, nil, nil, err
	}
	gw, err := gateway.New(gateway.Config{HTTPAddr: cfg.HTTPAddr, HTTPSAddr: cfg.HTTPSAddr,
		TCPHost: hostOf(cfg.HTTPAddr), AccessLog: accessLog, Challenge: issuer.ServeChallenge,
		MaxConns: cfg.GatewayMaxConns, HeaderTimeout: cfg.GatewayHeaderTimeout, IdleTimeout: cfg.GatewayIdleTimeout})
	if err != nil {
		accessLog.Close()
		return nil, nil, nil, err
	}
	if err := gw.Start(); err != nil {
		accessLog.Close()
		return nil, nil, nil, err
	}
	base := cfg.Domain
	if base == "" {
		base = machineIP() + ".nip.io"
	}
	sync := worker.NewGatewaySync(st, gw, endpoints, base)
	sync.Hints = hints
	if err := sync.Sync(ctx); err != nil {
		gw.Close()
		return nil, nil, nil, fmt.Errorf("publish the stored rules: %w", err)
	}
	certs := worker.NewACMECertificates(st, issuer, sync.Wake)
	go certs.Run(ctx)
	info := &api.GatewayInfo{BaseDomain: base, HTTPPort: portOf(gw.HTTPAddr()), HTTPSPort: portOf(gw.HTTPSAddr()),
		Host: publicHost(cfg.HTTPAddr), RecentErrors: gw.RecentErrors,
		Changed: func() { sync.Wake(); certs.Trigger() }}
	return gw, sync, info, nil
}

// newIssuer prepares ACME (no network until a rule asks for auto_tls).
func newIssuer(cfg Config, dir *dataDir) (*acme.Issuer, error) {
	var roots []byte
	if cfg.ACMECA != "" {
		b, err := os.ReadFile(cfg.ACMECA)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca: %w", err)
		}
		roots = b
	}
	iss, err := acme.New(acme.Config{DirectoryURL: cfg.ACMEDirectory, Email: cfg.ACMEEmail,
		StorageDir: dir.file("acme"), ExtraRootsPEM: roots})
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	return iss, nil
}

func describeGateway(gw *gateway.Gateway, info *api.GatewayInfo) string {
	var parts []string
	if a := gw.HTTPAddr(); a != "" {
		parts = append(parts, "http "+a)
	}
	if a := gw.HTTPSAddr(); a != "" {
		parts = append(parts, "https "+a)
	}
	if len(parts) == 0 {
		parts = append(parts, "http and https off")
	}
	return strings.Join(parts, ", ") + ", domains *." + info.BaseDomain
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// publicHost is the address users reach TCP ports at: the gateway's own
// host when it is bound to one, else the machine's address.
func publicHost(addr string) string {
	if h := hostOf(addr); h != "" && !net.ParseIP(h).IsUnspecified() {
		return h
	}
	return machineIP()
}
