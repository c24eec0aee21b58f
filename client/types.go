package client

import "time"

// Identity is who the client's token acts as: the token itself, with the
// member it acts for, if any.
type Identity struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Team   string `json:"team,omitempty"`
	Member string `json:"member,omitempty"`
	Role   string `json:"role,omitempty"`
	Admin  bool   `json:"admin"`
}

// Readiness is the answer of /readyz: whether the server serves, and how far
// each start-up phase got.
type Readiness struct {
	Ready  bool    `json:"ready"`
	Phases []Phase `json:"phases"`
}

// Phase is one start-up step of the server.
type Phase struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// Team is a tenant owning apps, members and tokens.
type Team struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Roles of members and tokens, weakest first.
const (
	RoleViewer    = "viewer"
	RoleDeveloper = "developer"
	RoleAdmin     = "admin"
	RoleOwner     = "owner"
)

// Member is a person of a team.
type Member struct {
	Team      string    `json:"team,omitempty"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// Token is an API token as listed; its secret is never returned again
// after creation.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Team       string     `json:"team,omitempty"`
	Member     string     `json:"member,omitempty"`
	Role       string     `json:"role,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// TokenRequest creates a token either with its own Role or acting as
// Member (with the member's role); set one of the two.
type TokenRequest struct {
	Name   string `json:"name"`
	Role   string `json:"role,omitempty"`
	Member string `json:"member,omitempty"`
}

// NewToken is a created token with its secret, which is shown only once.
type NewToken struct {
	Token  Token  `json:"token"`
	Secret string `json:"secret"`
}

// App groups components.
type App struct {
	ID        string            `json:"id"`
	Team      string            `json:"team"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// AppSpec creates an app.
type AppSpec struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Component kinds.
const (
	KindImage      = "image"
	KindSource     = "source"
	KindThirdParty = "thirdparty"
)

// Component statuses, after Rainbond.
const (
	StatusUndeploy     = "undeploy"
	StatusBuilding     = "building"
	StatusBuildFailure = "build_failure"
	StatusClosed       = "closed"
	StatusStarting     = "starting"
	StatusWaiting      = "waiting"
	StatusRunning      = "running"
	StatusUpgrade      = "upgrade"
	StatusSomeAbnormal = "some_abnormal"
	StatusAbnormal     = "abnormal"
	StatusStopping     = "stopping"
	StatusUnknown      = "unknown"
)

// Source says where a source component's code comes from.
type Source struct {
	Type       string `json:"type,omitempty"`
	URL        string `json:"url,omitempty"`
	Branch     string `json:"branch,omitempty"`
	Tag        string `json:"tag,omitempty"`
	Commit     string `json:"commit,omitempty"`
	Subdir     string `json:"subdir,omitempty"`
	Language   string `json:"language,omitempty"`
	Dockerfile string `json:"dockerfile,omitempty"`
	// Credentials of the repository; answers show them masked.
	Username   string `json:"username,omitempty"`
	Password   string `json:"password,omitempty"`
	SSHKey     string `json:"ssh_key,omitempty"`
	Submodules bool   `json:"submodules,omitempty"`
	// Image to re-tag into the hub (type image).
	Image        string `json:"image,omitempty"`
	BuildTimeout int    `json:"build_timeout,omitempty"`
}

// Port is a container port. Inner ports are reachable by other components,
// outer ports are published by the gateway. Protocol is http, tcp, udp or
// grpc; empty means http.
//
// The last four fields are filled in answers only (a component's ports, not
// the port list or a new port) and must stay empty in requests: the server
// refuses fields it does not know.
type Port struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol,omitempty"`
	Alias    string `json:"alias,omitempty"`
	Inner    bool   `json:"inner"`
	Outer    bool   `json:"outer"`

	// InnerAddress is the stable HOST:PORT other components reach an inner
	// port of a deployed component at.
	InnerAddress string `json:"inner_address,omitempty"`
	// Domains and URLs say where the gateway publishes an outer HTTP port:
	// its default domain, then the HTTP rules' domains.
	Domains []string `json:"domains,omitempty"`
	URLs    []string `json:"urls,omitempty"`
	// TCPAddress is the gateway's HOST:PORT of an outer TCP or UDP port.
	TCPAddress string `json:"tcp_address,omitempty"`
}

// PortPatch changes the fields of a port that are not nil.
type PortPatch struct {
	Protocol *string `json:"protocol,omitempty"`
	Alias    *string `json:"alias,omitempty"`
	Inner    *bool   `json:"inner,omitempty"`
	Outer    *bool   `json:"outer,omitempty"`
}

// Env scopes: who sees a variable.
const (
	ScopeInner = "inner" // the component itself
	ScopeOuter = "outer" // its dependents, as connection info
	ScopeBoth  = "both"
)

// Env is an environment variable. The API returns secret values as "******".
type Env struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Scope  string `json:"scope,omitempty"`
	Secret bool   `json:"secret"`
}

// EnvPatch changes the fields of a variable that are not nil.
type EnvPatch struct {
	Value  *string `json:"value,omitempty"`
	Scope  *string `json:"scope,omitempty"`
	Secret *bool   `json:"secret,omitempty"`
}

// Volume is persistent storage mounted into every instance. Size is a
// quantity such as 1Gi; Type is local (the default) or memory.
type Volume struct {
	Name string `json:"name,omitempty"`
	Path string `json:"path"`
	Size string `json:"size,omitempty"`
	Type string `json:"type,omitempty"`
}

// Probe is a readiness or liveness check of type tcp, http or exec.
type Probe struct {
	Type                string   `json:"type"`
	Port                int      `json:"port,omitempty"`
	Path                string   `json:"path,omitempty"`
	Command             []string `json:"command,omitempty"`
	InitialDelaySeconds int      `json:"initial_delay_seconds,omitempty"`
	PeriodSeconds       int      `json:"period_seconds,omitempty"`
	TimeoutSeconds      int      `json:"timeout_seconds,omitempty"`
	SuccessThreshold    int      `json:"success_threshold,omitempty"`
	FailureThreshold    int      `json:"failure_threshold,omitempty"`
}

// ComponentSpec creates a component. Memory and CPU are quantities such as
// 512Mi and 500m; Instances 0 leaves the count to the server's default.
type ComponentSpec struct {
	Alias     string   `json:"alias"`
	Kind      string   `json:"kind,omitempty"`
	Image     string   `json:"image,omitempty"`
	Source    *Source  `json:"source,omitempty"`
	Endpoints []string `json:"endpoints,omitempty"`
	Instances int      `json:"instances,omitempty"`
	Memory    string   `json:"memory,omitempty"`
	CPU       string   `json:"cpu,omitempty"`
	Cmd       []string `json:"cmd,omitempty"`
	Args      []string `json:"args,omitempty"`
	Ports     []Port   `json:"ports,omitempty"`
	Envs      []Env    `json:"envs,omitempty"`
	Volumes   []Volume `json:"volumes,omitempty"`
	Readiness *Probe   `json:"readiness,omitempty"`
	Liveness  *Probe   `json:"liveness,omitempty"`
	// SettleSeconds is how long new instances must stay ready, without a
	// restart, before a deploy succeeds (0: the server's 10 s).
	SettleSeconds int `json:"settle_seconds,omitempty"`
}

// ComponentPatch changes the fields of a component that are not nil; a
// pointer to an empty slice clears a list.
type ComponentPatch struct {
	Kind      *string   `json:"kind,omitempty"`
	Image     *string   `json:"image,omitempty"`
	Source    *Source   `json:"source,omitempty"`
	Endpoints *[]string `json:"endpoints,omitempty"`
	Instances *int      `json:"instances,omitempty"`
	Memory    *string   `json:"memory,omitempty"`
	CPU       *string   `json:"cpu,omitempty"`
	Cmd       *[]string `json:"cmd,omitempty"`
	Args      *[]string `json:"args,omitempty"`
	Ports     *[]Port   `json:"ports,omitempty"`
	Envs      *[]Env    `json:"envs,omitempty"`
	Volumes   *[]Volume `json:"volumes,omitempty"`
	Readiness *Probe    `json:"readiness,omitempty"`
	Liveness  *Probe    `json:"liveness,omitempty"`
	// SettleSeconds: see ComponentSpec.
	SettleSeconds *int `json:"settle_seconds,omitempty"`
}

// Component is a component as the API returns it: its spec, the desired
// instance count (Replicas), the instances that actually run and the
// status derived from them.
type Component struct {
	ID        string     `json:"id"`
	Team      string     `json:"team"`
	App       string     `json:"app"`
	Alias     string     `json:"alias"`
	Kind      string     `json:"kind"`
	Image     string     `json:"image,omitempty"`
	Source    *Source    `json:"source,omitempty"`
	Endpoints []string   `json:"endpoints,omitempty"`
	Replicas  int        `json:"replicas"`
	Instances []Instance `json:"instances"`
	Memory    string     `json:"memory,omitempty"`
	CPU       string     `json:"cpu,omitempty"`
	Cmd       []string   `json:"cmd,omitempty"`
	Args      []string   `json:"args,omitempty"`
	Ports     []Port     `json:"ports,omitempty"`
	Envs      []Env      `json:"envs,omitempty"`
	Volumes   []Volume   `json:"volumes,omitempty"`
	Readiness *Probe     `json:"readiness,omitempty"`
	Liveness  *Probe     `json:"liveness,omitempty"`
	// Status is one of the Status* constants; StatusLabel is its Chinese
	// console label.
	Status        string    `json:"status"`
	StatusLabel   string    `json:"status_label,omitempty"`
	StatusMessage string    `json:"status_message,omitempty"`
	DeployVersion int64     `json:"deploy_version"`
	Dependencies  []string  `json:"dependencies,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// RestartPending says why the running instances are out of date (a
	// dependency's connection info changed); a restart applies it.
	RestartPending string `json:"restart_pending,omitempty"`
	// RegisteredEndpoints are the addresses a thirdparty service registered
	// itself with EndpointKey (see RegisterEndpoints).
	RegisteredEndpoints []string `json:"registered_endpoints,omitempty"`
	EndpointKey         string   `json:"endpoint_key,omitempty"`
}

// ReadyInstances counts the instances that are running.
func (c *Component) ReadyInstances() int {
	n := 0
	for _, in := range c.Instances {
		if in.Status == "running" {
			n++
		}
	}
	return n
}

// Instance is one running copy of a component. Every status carries a
// reason, a message and advice for the user.
type Instance struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	Advice   string `json:"advice,omitempty"`
	Version  int64  `json:"version,omitempty"`
	Address  string `json:"address,omitempty"`
	Restarts int    `json:"restarts"`
}

// Dependency is a component that another one needs, with its status.
type Dependency struct {
	Alias  string `json:"alias"`
	App    string `json:"app"`
	Status string `json:"status"`
}

// Version is one build (or image) result of a component.
type Version struct {
	Number     int64     `json:"number"`
	Image      string    `json:"image"`
	Digest     string    `json:"digest,omitempty"`
	Commit     string    `json:"commit,omitempty"`
	Author     string    `json:"author,omitempty"`
	Message    string    `json:"message,omitempty"`
	Status     string    `json:"status"`
	EventID    string    `json:"event_id,omitempty"`
	DurationMS int64     `json:"duration_ms,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// HTTPRule routes a domain and path prefix to a component port.
type HTTPRule struct {
	ID          string            `json:"id"`
	Team        string            `json:"team"`
	Domain      string            `json:"domain"`
	Path        string            `json:"path"`
	Component   string            `json:"component"`
	Port        int               `json:"port"`
	Certificate string            `json:"certificate,omitempty"`
	Weight      int               `json:"weight"`
	Headers     map[string]string `json:"headers,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	HTTPRuleOptions
}

// HTTPRuleOptions tune how the gateway forwards a rule's requests. Zero
// values mean the gateway's defaults (5s to connect, 60s to read and to
// send, no body or rate limit).
type HTTPRuleOptions struct {
	// RewritePath replaces the matched path prefix upstream: with Path
	// "/api" and RewritePath "/", /api/x is sent as /x.
	RewritePath    string `json:"rewrite_path,omitempty"`
	ConnectTimeout int    `json:"connect_timeout,omitempty"` // seconds
	ReadTimeout    int    `json:"read_timeout,omitempty"`    // seconds until the response headers
	SendTimeout    int    `json:"send_timeout,omitempty"`    // seconds to send the request body
	MaxBodySize    int64  `json:"max_body_size,omitempty"`   // bytes; larger bodies get 413
	// RateLimit is in requests a second; more get 503. RateBurst is how
	// many above the rate are accepted at once (0: the rate).
	RateLimit float64 `json:"rate_limit,omitempty"`
	RateBurst int     `json:"rate_burst,omitempty"`
	// RedirectHTTPS answers plain-HTTP requests with a 308 to https.
	RedirectHTTPS bool `json:"redirect_https,omitempty"`
	// AutoTLS gets a certificate for the domain over ACME; not with
	// Certificate, not for wildcard domains.
	AutoTLS bool `json:"auto_tls,omitempty"`
}

// HTTPRuleSpec creates an HTTP rule. An empty Path means "/", Weight 0
// means 100.
type HTTPRuleSpec struct {
	Domain      string            `json:"domain"`
	Path        string            `json:"path,omitempty"`
	Component   string            `json:"component"`
	Port        int               `json:"port"`
	Certificate string            `json:"certificate,omitempty"`
	Weight      int               `json:"weight,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	HTTPRuleOptions
}

// HTTPRulePatch changes the fields of a rule that are not nil; a pointer
// to a zero value resets an option to the gateway's default.
type HTTPRulePatch struct {
	Domain         *string            `json:"domain,omitempty"`
	Path           *string            `json:"path,omitempty"`
	Component      *string            `json:"component,omitempty"`
	Port           *int               `json:"port,omitempty"`
	Certificate    *string            `json:"certificate,omitempty"`
	Weight         *int               `json:"weight,omitempty"`
	Headers        *map[string]string `json:"headers,omitempty"`
	RewritePath    *string            `json:"rewrite_path,omitempty"`
	ConnectTimeout *int               `json:"connect_timeout,omitempty"`
	ReadTimeout    *int               `json:"read_timeout,omitempty"`
	SendTimeout    *int               `json:"send_timeout,omitempty"`
	MaxBodySize    *int64             `json:"max_body_size,omitempty"`
	RateLimit      *float64           `json:"rate_limit,omitempty"`
	RateBurst      *int               `json:"rate_burst,omitempty"`
	RedirectHTTPS  *bool              `json:"redirect_https,omitempty"`
	AutoTLS        *bool              `json:"auto_tls,omitempty"`
}

// GatewayError is a request (or TCP connection) the gateway answered
// itself instead of a component: why a user could not reach it.
type GatewayError struct {
	Time time.Time `json:"time"`
	// Status is the HTTP status answered; 0 for TCP.
	Status int `json:"status,omitempty"`
	// Cause is e.g. "connection refused", "no ready instance", "upstream
	// timeout", "rate limited" or "request body too large".
	Cause     string `json:"cause"`
	Method    string `json:"method,omitempty"`
	Host      string `json:"host"`
	Path      string `json:"path,omitempty"`
	Upstream  string `json:"upstream,omitempty"` // instance address tried
	RequestID string `json:"request_id,omitempty"`
}

// Topology is an app as a graph: its components (and the components of
// other apps they depend on or that depend on them), and the gateway when
// it publishes any of them.
type Topology struct {
	Nodes []TopologyNode `json:"nodes"`
	Edges []TopologyEdge `json:"edges"`
}

// Topology node kinds besides the component kinds.
const KindGateway = "gateway"

// Topology edge types.
const (
	EdgeDependency = "dependency" // From needs To
	EdgeGateway    = "gateway"    // the gateway publishes To
)

// TopologyNode is a component, or the gateway (ID and Kind "gateway").
type TopologyNode struct {
	ID            string `json:"id"`
	Kind          string `json:"kind"`
	App           string `json:"app,omitempty"`
	Status        string `json:"status,omitempty"`
	StatusLabel   string `json:"status_label,omitempty"`
	StatusMessage string `json:"status_message,omitempty"`
	Replicas      int    `json:"replicas"`
	// Ready counts the running instances (or healthy endpoints).
	Ready int `json:"ready"`
}

// TopologyEdge is a dependency or a gateway entry, which names the port it
// publishes with its domains or TCP address.
type TopologyEdge struct {
	From       string   `json:"from"`
	To         string   `json:"to"`
	Type       string   `json:"type"`
	Port       int      `json:"port,omitempty"`
	Domains    []string `json:"domains,omitempty"`
	TCPAddress string   `json:"tcp_address,omitempty"`
}

// EffectiveEnv is a variable as a component's container will see it.
type EffectiveEnv struct {
	Name  string `json:"name"`
	Value string `json:"value"` // "******" for secrets
	// Origin is "component", or "dependency ALIAS (port N)" or
	// "dependency ALIAS (env of scope outer|both)".
	Origin string `json:"origin"`
	Secret bool   `json:"secret"`
}

// EffectiveEnvs is what the next start of a component's container sees:
// its own variables over its dependencies' connection info, with ${NAME}
// references expanded.
type EffectiveEnvs struct {
	Items []EffectiveEnv `json:"items"`
	// RestartPending says why the running instances see something else.
	RestartPending string `json:"restart_pending,omitempty"`
}

// Endpoints are the addresses of a thirdparty component: those of its
// spec, those the service registered, and the health of each as an
// Instance whose ID and Address are the endpoint.
type Endpoints struct {
	Static     []string   `json:"static"`
	Registered []string   `json:"registered"`
	Items      []Instance `json:"items"`
}

// TCPRule publishes a component port on a gateway port.
type TCPRule struct {
	ID          string    `json:"id"`
	Team        string    `json:"team"`
	GatewayPort int       `json:"gateway_port"`
	Component   string    `json:"component"`
	Port        int       `json:"port"`
	CreatedAt   time.Time `json:"created_at"`
}

// TCPRuleSpec creates a TCP rule; GatewayPort 0 lets the server pick a free
// port.
type TCPRuleSpec struct {
	GatewayPort int    `json:"gateway_port"`
	Component   string `json:"component"`
	Port        int    `json:"port"`
}

// Certificate is a TLS certificate; the API never returns its key.
type Certificate struct {
	ID          string    `json:"id"`
	Team        string    `json:"team"`
	Name        string    `json:"name"`
	Certificate string    `json:"certificate"`
	Domains     []string  `json:"domains,omitempty"`
	NotAfter    time.Time `json:"not_after"`
	CreatedAt   time.Time `json:"created_at"`
}

// CertificateSpec uploads a certificate and its key, both PEM.
type CertificateSpec struct {
	Name        string `json:"name"`
	Certificate string `json:"certificate"`
	Key         string `json:"key"`
}

// Event statuses.
const (
	EventRunning = "running"
	EventSuccess = "success"
	EventFailure = "failure"
)

// Event is one operation (build, deploy, start, stop, scale...) and the
// handle its log is followed by.
type Event struct {
	ID         string     `json:"id"`
	Team       string     `json:"team,omitempty"`
	Type       string     `json:"type"`
	Target     string     `json:"target"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	Message    string     `json:"message,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Done reports whether the event has ended.
func (e *Event) Done() bool { return e.Status == EventSuccess || e.Status == EventFailure }

// Failed reports whether the event ended in failure.
func (e *Event) Failed() bool { return e.Status == EventFailure }

// EventFilter selects events; zero fields select everything.
type EventFilter struct {
	Team   string // "" means every team (admin tokens only)
	Target string // prefix of the target, e.g. "component:shop/web/api"
	Status string
	Limit  int
}

// Line is one line of an event's log. Seq starts at 1 and has no gaps, so
// a reader can resume after the last Seq it saw.
type Line struct {
	Seq   int64     `json:"seq"`
	Time  time.Time `json:"time"`
	Level string    `json:"level,omitempty"`
	Stage string    `json:"stage,omitempty"`
	Text  string    `json:"text"`
}

// EventLog is one page of an event's log with the event's current state.
type EventLog struct {
	Event Event  `json:"event"`
	Lines []Line `json:"lines"`
}
