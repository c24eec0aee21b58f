package model

import (
	"fmt"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
)

var (
	// DNS-1035 labels: they become host names and Kubernetes Service names.
	dnsLabel = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	envName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	domain   = regexp.MustCompile(`^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// ValidateName checks a team, app, member or token name.
func ValidateName(field, name string) error {
	return validateLabel(field, name)
}

func validateLabel(field, s string) error {
	if s == "" {
		return invalid(field, "is required")
	}
	if len(s) > 63 {
		return invalid(field, "must be at most 63 characters (got %d)", len(s))
	}
	if !dnsLabel.MatchString(s) {
		return invalid(field, "must be a DNS label: lower-case letters, digits and '-', starting with a letter and not ending with '-' (got %q)", s)
	}
	return nil
}

// ValidateEnvName checks a POSIX environment variable name.
func ValidateEnvName(field, name string) error {
	if !envName.MatchString(name) {
		return invalid(field, "must be a POSIX variable name: letters, digits and '_', not starting with a digit (got %q)", name)
	}
	return nil
}

// ValidateDomain checks a host name for a gateway rule ("*." prefix allowed).
func ValidateDomain(field, d string) error {
	if d == "" {
		return invalid(field, "is required")
	}
	if len(d) > 253 || !domain.MatchString(d) {
		return invalid(field, "must be a lower-case DNS name such as www.example.com or *.example.com (got %q)", d)
	}
	return nil
}

// ValidateImage checks a container image reference such as nginx:1.25 or
// registry.local:5000/team/app@sha256:....
func ValidateImage(field, ref string) error {
	if ref == "" {
		return invalid(field, "is required for kind image")
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return invalid(field, "is not a valid image reference (%v); use NAME[:TAG][@DIGEST], e.g. nginx:1.25", err)
	}
	return nil
}

// ValidatePort checks a port number.
func ValidatePort(field string, p int) error {
	if p < 1 || p > 65535 {
		return invalid(field, "must be between 1 and 65535 (got %d)", p)
	}
	return nil
}

var binarySuffixes = []struct {
	suffix string
	factor int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1000}, {"K", 1000}, {"M", 1000 * 1000}, {"G", 1000 * 1000 * 1000}, {"T", 1000 * 1000 * 1000 * 1000},
}

// ParseBytes reads a quantity such as 512Mi, 1Gi, 100M or 1048576.
func ParseBytes(field, s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	factor := int64(1)
	num := s
	for _, b := range binarySuffixes {
		if strings.HasSuffix(s, b.suffix) {
			factor, num = b.factor, strings.TrimSuffix(s, b.suffix)
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/factor {
		return 0, invalid(field, "must be a size like 512Mi, 1Gi or 100M (got %q)", s)
	}
	return n * factor, nil
}

// FormatBytes writes bytes in the largest binary unit that divides them.
func FormatBytes(n int64) string {
	if n == 0 {
		return ""
	}
	for _, u := range []struct {
		s string
		f int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n%u.f == 0 {
			return fmt.Sprintf("%d%s", n/u.f, u.s)
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseCPU reads a CPU quantity: "500m" (millicores), "0.5" or "2" (cores).
func ParseCPU(field, s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil || n < 0 || n > 1<<20 {
			return 0, invalid(field, "must be CPU like 500m, 0.5 or 2 (got %q)", s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1024 {
		return 0, invalid(field, "must be CPU like 500m, 0.5 or 2 (got %q)", s)
	}
	return int64(f*1000 + 0.5), nil
}

// FormatCPU writes millicores as Kubernetes does.
func FormatCPU(m int64) string {
	if m == 0 {
		return ""
	}
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return fmt.Sprintf("%dm", m)
}

// DefaultPortAlias is the env prefix dependents get for a port of alias.
func DefaultPortAlias(componentAlias string) string {
	return strings.ToUpper(strings.ReplaceAll(componentAlias, "-", "_"))
}

// Normalize fills the defaults a user may leave out.
func (c *Component) Normalize() {
	if c.Kind == "" {
		c.Kind = KindImage
	}
	if c.Desired == "" {
		c.Desired = DesiredUndeployed
	}
	if c.Status == "" {
		c.Status = StatusUndeploy
		if c.Kind == KindThirdParty {
			// Nothing to deploy: it is closed until started (the seed's
			// third step).
			c.Status = StatusClosed
		}
	}
	// The first port takes the component's env prefix, later ones add
	// their number, so that dependents get distinct <ALIAS>_HOST/_PORT.
	taken := map[string]bool{}
	for _, p := range c.Ports {
		taken[p.Alias] = p.Alias != ""
	}
	for i := range c.Ports {
		if c.Ports[i].Alias == "" {
			alias := DefaultPortAlias(c.Alias)
			if taken[alias] {
				alias = fmt.Sprintf("%s_%d", alias, c.Ports[i].Port)
			}
			c.Ports[i].Alias = alias
			taken[alias] = true
		}
		c.Ports[i].Normalize(c.Alias)
	}
	for i := range c.Envs {
		if c.Envs[i].Scope == "" {
			c.Envs[i].Scope = ScopeInner
		}
	}
	for i := range c.Volumes {
		c.Volumes[i].Normalize(i)
	}
}

// Normalize fills a port's defaults.
func (p *Port) Normalize(componentAlias string) {
	if p.Protocol == "" {
		p.Protocol = ProtoHTTP
	}
	if p.Alias == "" {
		p.Alias = DefaultPortAlias(componentAlias)
	}
}

// Normalize fills a volume's defaults.
func (v *Volume) Normalize(i int) {
	if v.Type == "" {
		v.Type = "local"
	}
	if v.Name == "" {
		v.Name = fmt.Sprintf("vol%d", i+1)
	}
}

// Validate checks a normalized component.
func (c *Component) Validate() error {
	if err := validateLabel("alias", c.Alias); err != nil {
		return err
	}
	if !c.Kind.Valid() {
		return invalid("kind", "must be one of image, source, thirdparty (got %q)", c.Kind)
	}
	switch c.Kind {
	case KindImage:
		if err := ValidateImage("image", c.Image); err != nil {
			return err
		}
	case KindSource:
		if err := c.Source.Validate(); err != nil {
			return err
		}
	case KindThirdParty:
		for i, ep := range c.Endpoints {
			if err := ValidateEndpoint(fmt.Sprintf("endpoints[%d]", i), ep); err != nil {
				return err
			}
		}
	}
	if c.Instances < 0 || c.Instances > 100 {
		return invalid("instances", "must be between 0 and 100 (got %d)", c.Instances)
	}
	if c.Memory != 0 && c.Memory < 4<<20 {
		return invalid("memory", "must be at least 4Mi, or 0 for no limit")
	}
	if c.SettleSeconds < 0 || c.SettleSeconds > 600 {
		return invalid("settle_seconds", "must be between 1 and 600 seconds, or 0 for the default of %d (got %d)", DefaultSettleSeconds, c.SettleSeconds)
	}
	seenPort := map[int]bool{}
	for i, p := range c.Ports {
		if err := p.Validate(fmt.Sprintf("ports[%d]", i)); err != nil {
			return err
		}
		if seenPort[p.Port] {
			return invalid(fmt.Sprintf("ports[%d].port", i), "duplicates port %d", p.Port)
		}
		seenPort[p.Port] = true
		for _, q := range c.Ports[:i] {
			if q.Alias == p.Alias {
				return invalid(fmt.Sprintf("ports[%d].alias", i), "duplicates the alias %s of port %d; each port needs its own env prefix", p.Alias, q.Port)
			}
		}
	}
	seenEnv := map[string]bool{}
	for i, e := range c.Envs {
		if err := e.Validate(fmt.Sprintf("envs[%d]", i)); err != nil {
			return err
		}
		if seenEnv[e.Name] {
			return invalid(fmt.Sprintf("envs[%d].name", i), "duplicates variable %s", e.Name)
		}
		seenEnv[e.Name] = true
	}
	seenVol := map[string]bool{}
	for i, v := range c.Volumes {
		if err := v.Validate(fmt.Sprintf("volumes[%d]", i)); err != nil {
			return err
		}
		if seenVol[v.Path] || seenVol["name:"+v.Name] {
			return invalid(fmt.Sprintf("volumes[%d]", i), "duplicates the path or name of another volume")
		}
		seenVol[v.Path], seenVol["name:"+v.Name] = true, true
	}
	readiness := c.Readiness
	if c.Kind == KindThirdParty && readiness != nil {
		if readiness.Type == ProbeExec {
			return invalid("readiness.type", "must be http or tcp for a thirdparty component: berth cannot run commands in a service it does not run")
		}
		if readiness.Port == 0 {
			// Port 0 checks each endpoint on its own port.
			cp := *readiness
			cp.Port = 1
			readiness = &cp
		}
	}
	if err := readiness.Validate("readiness"); err != nil {
		return err
	}
	return c.Liveness.Validate("liveness")
}

// ValidateEndpoint checks a HOST:PORT address of a thirdparty endpoint.
func ValidateEndpoint(field, ep string) error {
	host, port, err := net.SplitHostPort(ep)
	if err != nil || host == "" || strings.ContainsAny(host, "/ @") {
		return invalid(field, "must be HOST:PORT, e.g. 10.0.0.5:3306, db.example.com:5432 or [fd00::5]:5432 (got %q)", ep)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return invalid(field, "must be HOST:PORT with a numeric port (got %q)", ep)
	}
	return ValidatePort(field, p)
}

// Validate checks a normalized port.
func (p Port) Validate(field string) error {
	if err := ValidatePort(field+".port", p.Port); err != nil {
		return err
	}
	if !p.Protocol.Valid() {
		return invalid(field+".protocol", "must be one of http, tcp, udp, grpc (got %q)", p.Protocol)
	}
	return ValidateEnvName(field+".alias", p.Alias)
}

// Validate checks a normalized env.
func (e Env) Validate(field string) error {
	if err := ValidateEnvName(field+".name", e.Name); err != nil {
		return err
	}
	if !e.Scope.Valid() {
		return invalid(field+".scope", "must be one of inner, outer, both (got %q)", e.Scope)
	}
	if len(e.Value) > 64<<10 {
		return invalid(field+".value", "must be at most 64 KiB")
	}
	return nil
}

// Validate checks a normalized volume.
func (v Volume) Validate(field string) error {
	if err := validateLabel(field+".name", v.Name); err != nil {
		return err
	}
	if !strings.HasPrefix(v.Path, "/") || path.Clean(v.Path) != v.Path || v.Path == "/" {
		return invalid(field+".path", "must be a clean absolute path other than / (got %q)", v.Path)
	}
	if v.Type != "local" && v.Type != "memory" {
		return invalid(field+".type", "must be local or memory (got %q)", v.Type)
	}
	if v.Size < 0 {
		return invalid(field+".size", "must not be negative")
	}
	return nil
}

// Validate checks a probe; a nil probe is valid (none configured).
func (p *Probe) Validate(field string) error {
	if p == nil {
		return nil
	}
	switch p.Type {
	case ProbeTCP:
		if err := ValidatePort(field+".port", p.Port); err != nil {
			return err
		}
	case ProbeHTTP:
		if err := ValidatePort(field+".port", p.Port); err != nil {
			return err
		}
		if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
			return invalid(field+".path", "must start with / (got %q)", p.Path)
		}
	case ProbeExec:
		if len(p.Command) == 0 {
			return invalid(field+".command", "is required for an exec probe")
		}
	default:
		return invalid(field+".type", "must be one of tcp, http, exec (got %q)", p.Type)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"initial_delay_seconds", p.InitialDelaySeconds}, {"period_seconds", p.PeriodSeconds},
		{"timeout_seconds", p.TimeoutSeconds}, {"success_threshold", p.SuccessThreshold},
		{"failure_threshold", p.FailureThreshold},
	} {
		if f.v < 0 || f.v > 3600 {
			return invalid(field+"."+f.name, "must be between 0 and 3600 (got %d)", f.v)
		}
	}
	if p.ExpectStatus != 0 && (p.Type != ProbeHTTP || p.ExpectStatus < 100 || p.ExpectStatus > 599) {
		return invalid(field+".expect_status", "must be an HTTP status (100-599) of an http check (got %d)", p.ExpectStatus)
	}
	return nil
}

// Validate checks an HTTP rule.
func (r *HTTPRule) Validate() error {
	if r.Path == "" {
		r.Path = "/"
	}
	if r.Weight == 0 {
		r.Weight = 100
	}
	if err := ValidateDomain("domain", r.Domain); err != nil {
		return err
	}
	if !strings.HasPrefix(r.Path, "/") || strings.ContainsAny(r.Path, " ?#") {
		return invalid("path", "must be a path prefix starting with / (got %q)", r.Path)
	}
	if err := validateLabel("component", r.Component); err != nil {
		return err
	}
	if err := ValidatePort("port", r.Port); err != nil {
		return err
	}
	if r.Weight < 1 || r.Weight > 100 {
		return invalid("weight", "must be between 1 and 100 (got %d)", r.Weight)
	}
	for k := range r.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			return invalid("headers", "has an invalid header name %q", k)
		}
	}
	if r.AutoTLS && r.Certificate != "" {
		return invalid("auto_tls", "cannot be set with a certificate: either upload one or let berth get one over ACME")
	}
	if r.AutoTLS && strings.HasPrefix(r.Domain, "*.") {
		return invalid("auto_tls", "needs an exact domain: ACME HTTP-01 cannot issue wildcard certificates (got %q); upload a wildcard certificate instead", r.Domain)
	}
	return r.RouteOptions.Validate()
}

// Validate checks the proxy options of an HTTP rule.
func (o *RouteOptions) Validate() error {
	if o.RewritePath != "" && (!strings.HasPrefix(o.RewritePath, "/") || strings.ContainsAny(o.RewritePath, " ?#\r\n")) {
		return invalid("rewrite_path", "must be a path starting with / (got %q)", o.RewritePath)
	}
	for _, t := range []struct {
		field string
		v     int
	}{{"connect_timeout", o.ConnectTimeout}, {"read_timeout", o.ReadTimeout}, {"send_timeout", o.SendTimeout}} {
		if t.v < 0 || t.v > 3600 {
			return invalid(t.field, "must be between 0 (the default) and 3600 seconds (got %d)", t.v)
		}
	}
	if o.MaxBodySize < 0 {
		return invalid("max_body_size", "must be 0 (no limit) or a number of bytes (got %d)", o.MaxBodySize)
	}
	if o.RateLimit < 0 || o.RateLimit > 1e6 {
		return invalid("rate_limit", "must be between 0 (no limit) and 1000000 requests a second (got %g)", o.RateLimit)
	}
	if o.RateBurst < 0 || o.RateBurst > 1e6 {
		return invalid("rate_burst", "must be between 0 and 1000000 (got %d)", o.RateBurst)
	}
	return nil
}

// Validate checks a TCP rule; GatewayPort 0 means "pick one from the range".
func (r *TCPRule) Validate() error {
	if r.GatewayPort != 0 && (r.GatewayPort < 1024 || r.GatewayPort > 65535) {
		return invalid("gateway_port", "must be between 1024 and 65535, or left out to get a free port of the range (got %d)", r.GatewayPort)
	}
	if err := validateLabel("component", r.Component); err != nil {
		return err
	}
	return ValidatePort("port", r.Port)
}

// Source types.
const (
	SourceGit     = "git"
	SourcePackage = "package"
	SourceImage   = "image"
)

// Validate checks a source and fills its type: git when a URL is given.
func (s *Source) Validate() error {
	if s == nil {
		return invalid("source.url", "is required for kind source: {\"url\": GIT_URL}, or {\"type\": \"package\"} for an upload, or {\"type\": \"image\", \"image\": REF}")
	}
	if s.Type == "" {
		s.Type = SourceGit
		if s.Image != "" && s.URL == "" {
			s.Type = SourceImage
		}
	}
	switch s.Type {
	case SourceGit:
		if s.URL == "" {
			return invalid("source.url", "is required for a git source (https://..., ssh://... or git@host:path)")
		}
		if (s.Branch != "" && s.Tag != "") || (s.Branch != "" && s.Commit != "") || (s.Tag != "" && s.Commit != "") {
			return invalid("source", "give one of branch, tag or commit, not several")
		}
		for field, v := range map[string]string{"source.branch": s.Branch, "source.tag": s.Tag} {
			if strings.HasPrefix(v, "-") || strings.ContainsAny(v, " \t\n\r~^:?*[\\") || strings.Contains(v, "..") {
				return invalid(field, "is not a valid git ref name (got %q)", v)
			}
		}
		if s.Commit != "" && !isHex(s.Commit) {
			return invalid("source.commit", "must be a hexadecimal commit id (got %q)", s.Commit)
		}
	case SourcePackage:
	case SourceImage:
		if err := ValidateImage("source.image", s.Image); err != nil {
			return err
		}
	default:
		return invalid("source.type", "must be git, package or image (got %q)", s.Type)
	}
	if s.Subdir != "" && (strings.HasPrefix(s.Subdir, "/") || strings.Contains(s.Subdir, "..")) {
		return invalid("source.subdir", "must be a relative path inside the repository (got %q)", s.Subdir)
	}
	if s.BuildTimeout < 0 || s.BuildTimeout > 24*3600 {
		return invalid("source.build_timeout", "must be between 0 (the server's default) and 86400 seconds (got %d)", s.BuildTimeout)
	}
	return nil
}

func isHex(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
