// Package pebbletest runs Pebble, Let's Encrypt's ACME test server, on
// loopback for tests: its own DNS server answering 127.0.0.1 for every
// name, its own HTTPS certificate, and HTTP-01 validated either against a
// challenge server of the harness (ServeChallenges) or against a port the
// caller names (Options.HTTPPort), such as a gateway's plain-HTTP listener.
//
// Only test code imports this package.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Version is the Pebble built when none is installed (scripts/test.sh
// normally installs one first). The harness works with v2.7.0 too; Pebble
// before 2.10 asks DNS over UDP, 2.10 over TCP, hence both in startDNS.
const Version = "v2.10.1"

var pebbleBin struct {
	once sync.Once
	path string
	err  error
}

// Binary returns a Pebble binary: $PEBBLE_BIN, one on PATH or in the usual
// GOBINs, or one built once into the user cache dir. Without one the test
// skips, except under CI (CI=true), where a silently skipped ACME suite
// would hide a broken install step.
func Binary(t testing.TB) string {
	t.Helper()
	pebbleBin.once.Do(func() {
		pebbleBin.path, pebbleBin.err = locate()
	})
	if pebbleBin.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pebble (ACME test server) unavailable: %v", pebbleBin.err)
		}
		t.Skipf("pebble (ACME test server) unavailable: %v", pebbleBin.err)
	}
	return pebbleBin.path
}

func locate() (string, error) {
	if p := os.Getenv("PEBBLE_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("PEBBLE_BIN: %w", err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("pebble"); err == nil {
		return p, nil
	}
	home, _ := os.UserHomeDir()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	gobin := filepath.Join(cache, "berth-test", "pebble-"+Version)
	for _, p := range []string{"/usr/local/bin/pebble", filepath.Join(home, "go", "bin", "pebble"), filepath.Join(gobin, "pebble")} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("not installed, and no go tool to build it: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work, err := os.MkdirTemp("", "pebble-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	cmd := exec.CommandContext(ctx, goTool, "install", "github.com/letsencrypt/pebble/v2/cmd/pebble@"+Version)
	// Outside the main module, and with no -mod flag inherited from it.
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("not installed, and `go install pebble@%s` failed: %w\n%s", Version, err, out)
	}
	return filepath.Join(gobin, "pebble"), nil
}

// Options configures Start.
type Options struct {
	// HTTPPort is the port on 127.0.0.1 where Pebble validates HTTP-01
	// challenges. 0: the harness opens a challenge server of its own, and
	// the test routes it with ServeChallenges.
	HTTPPort int
}

// Pebble is one running Pebble, stopped when the test ends.
type Pebble struct {
	// DirURL is the ACME directory.
	DirURL string
	// MgmtURL is Pebble's management interface (roots, intermediates).
	MgmtURL string
	// CAPEM is the CA of Pebble's own HTTPS listeners (directory and
	// management): what an ACME client must trust to talk to Pebble. It is
	// not the CA of the certificates Pebble issues; see Root.
	CAPEM []byte
	// HTTPPort is the port Pebble validates HTTP-01 on.
	HTTPPort int
	// LogPath is Pebble's output, shown in the test log if the test fails.
	LogPath string

	client    *http.Client
	ownServer bool
	challenge atomic.Pointer[http.Handler]
}

// Start runs Pebble with its own DNS server (every A query answers
// 127.0.0.1), all on loopback, and waits until its directory answers.
func Start(t testing.TB, opts Options) *Pebble {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	p := &Pebble{LogPath: filepath.Join(dir, "pebble.log")}

	caPEM, certPEM, keyPEM := makeServingCert(t)
	p.CAPEM = caPEM
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certPath, certPEM)
	writeFile(t, keyPath, keyPEM)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(p.client.CloseIdleConnections)

	dnsAddr := startDNS(t)

	p.HTTPPort = opts.HTTPPort
	if p.HTTPPort == 0 {
		// The challenge server's port must be known before Pebble starts,
		// so its listener is opened first and kept.
		p.ownServer = true
		httpLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		httpSrv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if h := p.challenge.Load(); h != nil {
					(*h).ServeHTTP(w, r)
					return
				}
				http.NotFound(w, r)
			}),
			ReadHeaderTimeout: 5 * time.Second,
		}
		go httpSrv.Serve(httpLn)
		t.Cleanup(func() { httpSrv.Close() })
		p.HTTPPort = httpLn.Addr().(*net.TCPAddr).Port
	}

	listen, mgmt := FreeAddr(t), FreeAddr(t)
	var cfg struct {
		Pebble map[string]any `json:"pebble"`
	}
	cfg.Pebble = map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        mgmt,
		"certificate":                    certPath,
		"privateKey":                     keyPath,
		"httpPort":                       p.HTTPPort,
		"tlsPort":                        FreePort(t), // TLS-ALPN-01 is not used
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		// Short Retry-After on polled authorizations and orders.
		"retryAfter": map[string]int{"authz": 1, "order": 1},
	}
	cfgPath := filepath.Join(dir, "pebble-config.json")
	raw, _ := json.Marshal(cfg)
	writeFile(t, cfgPath, raw)

	logFile, err := os.Create(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgPath, "-dnsserver", dnsAddr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // no random validation delay
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce rejections
		"PEBBLE_AUTHZREUSE=0",      // every order validates afresh
	)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start pebble: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logFile.Close()
		if t.Failed() {
			t.Logf("pebble log:\n%s", p.Log())
		}
	})

	p.DirURL = "https://" + listen + "/dir"
	p.MgmtURL = "https://" + mgmt
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := p.client.Get(p.DirURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("pebble exited during start-up (see log below)")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble not ready after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// ServeChallenges routes the CA's validation requests to h. It needs the
// harness's own challenge server (Options.HTTPPort 0).
func (p *Pebble) ServeChallenges(h http.Handler) {
	if !p.ownServer {
		panic("pebbletest: ServeChallenges with Options.HTTPPort set: Pebble validates on that port, not on the harness's server")
	}
	p.challenge.Store(&h)
}

// Root is Pebble's issuance root (not the CA of its HTTPS, CAPEM), which
// Pebble makes afresh at each start and publishes on its management
// interface.
func (p *Pebble) Root(t testing.TB) *x509.Certificate {
	t.Helper()
	resp, err := p.client.Get(p.MgmtURL + "/roots/0")
	if err != nil {
		t.Fatalf("fetch pebble root: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fetch pebble root: %s: %s", resp.Status, body)
	}
	block, _ := pem.Decode(body)
	if block == nil {
		t.Fatalf("pebble root is not PEM: %q", body)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// Log is the end of Pebble's output so far.
func (p *Pebble) Log() string {
	out, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(tail(out, 6000))
}

// startDNS answers every A query with 127.0.0.1 and everything else (AAAA,
// CAA) with an empty NOERROR, on one port over both TCP (what Pebble 2.10's
// VA uses) and UDP (what older Pebbles use).
func startDNS(t testing.TB) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		for _, q := range req.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})
	var ln net.Listener
	var pc net.PacketConn
	for attempt := 0; ; attempt++ {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", ln.Addr().String()); err == nil {
			break
		}
		ln.Close()
		if attempt == 10 {
			t.Fatalf("no port free for DNS over both TCP and UDP: %v", err)
		}
	}
	for _, srv := range []*dns.Server{
		{Listener: ln, Net: "tcp", Handler: handler},
		{PacketConn: pc, Net: "udp", Handler: handler},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return ln.Addr().String()
}

// FreePort is a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeAddr is FreePort as "127.0.0.1:port".
func FreeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(t))
}

// makeServingCert makes a CA and a leaf for 127.0.0.1/localhost for
// Pebble's HTTPS listeners.
func makeServingCert(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test ACME server CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	if i := bytes.IndexByte(b[len(b)-n:], '\n'); i >= 0 {
		return b[len(b)-n+i+1:]
	}
	return b[len(b)-n:]
}
