package model

import "time"

// Kind says where a component's workload comes from.
type Kind string

const (
	KindImage      Kind = "image"      // a container image reference
	KindSource     Kind = "source"     // source code or a package, built by berth
	KindThirdParty Kind = "thirdparty" // a service berth does not run, only addresses
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindImage || k == KindSource || k == KindThirdParty }

// DesiredState is what the user asked a component to be.
type DesiredState string

const (
	DesiredUndeployed DesiredState = "undeployed" // never deployed
	DesiredRunning    DesiredState = "running"
	DesiredStopped    DesiredState = "stopped"
)

// Component is one deployable unit of an app. Its alias is a DNS label,
// unique within the team, so dependencies may cross apps of one team.
type Component struct {
	ID        string   `json:"id"`
	Team      string   `json:"team"`
	App       string   `json:"app"`
	Alias     string   `json:"alias"`
	Kind      Kind     `json:"kind"`
	Image     string   `json:"image,omitempty"`
	Source    *Source  `json:"source,omitempty"`
	Endpoints []string `json:"endpoints,omitempty"` // thirdparty: static host:port list
	// RegisteredEndpoints are a thirdparty component's addresses as the
	// service itself registered them (PUT .../endpoints with EndpointKey).
	RegisteredEndpoints []string `json:"registered_endpoints,omitempty"`
	// EndpointKey authenticates endpoint registration: per component, not
	// a team token, so a service can hold it.
	EndpointKey string   `json:"-"`
	Instances   int      `json:"instances"`
	Memory      int64    `json:"memory"` // bytes; 0 means no limit
	CPU         int64    `json:"cpu"`    // millicores; 0 means no limit
	Cmd         []string `json:"cmd,omitempty"`
	Args        []string `json:"args,omitempty"`
	Ports       []Port   `json:"ports,omitempty"`
	Envs        []Env    `json:"envs,omitempty"`
	Volumes     []Volume `json:"volumes,omitempty"`
	Readiness   *Probe   `json:"readiness,omitempty"`
	Liveness    *Probe   `json:"liveness,omitempty"`
	// SettleSeconds is how long every new instance must stay ready, with
	// no restart, before a deploy counts as a success; 0 takes
	// DefaultSettleSeconds.
	SettleSeconds int          `json:"settle_seconds,omitempty"`
	Desired       DesiredState `json:"desired"`
	// DeployVersion is the version number the runtime should run; 0 before
	// the first deploy.
	DeployVersion int64 `json:"deploy_version"`
	// RestartEvent is the id of the last restart operation; a change asks
	// the runtime to replace every instance.
	RestartEvent string `json:"restart_event,omitempty"`
	// InjectedEnv is the connection info of the dependencies (NAME=value)
	// as the instances were last started with it; a restart refreshes it.
	InjectedEnv []string `json:"-"`
	// RestartPending says why the running instances are out of date (a
	// dependency's connection info changed); a restart applies it.
	RestartPending string `json:"restart_pending,omitempty"`
	// BuildState is "building" while a build runs and "failed" after one
	// failed (the last good version keeps running); "" otherwise.
	BuildState   string `json:"build_state,omitempty"`
	BuildMessage string `json:"build_message,omitempty"`
	// WebhookSecret verifies git push webhooks for a source component.
	WebhookSecret string `json:"-"`
	// Gated means desired running but held back until every dependency
	// is ready (status waiting); the worker starts it then.
	Gated bool `json:"-"`
	// Status and StatusMessage are derived by the worker from the runtime.
	Status        ComponentStatus `json:"status"`
	StatusMessage string          `json:"status_message,omitempty"`
	// Revision increases on every write; updates carry the revision they read
	// so that concurrent writers cannot silently overwrite each other.
	Revision  int64     `json:"revision"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Source says where a source component's code comes from (see builds).
type Source struct {
	Type       string `json:"type,omitempty"` // git, package, image
	URL        string `json:"url,omitempty"`
	Branch     string `json:"branch,omitempty"`
	Tag        string `json:"tag,omitempty"`
	Commit     string `json:"commit,omitempty"`
	Subdir     string `json:"subdir,omitempty"`
	Language   string `json:"language,omitempty"` // overrides detection
	Dockerfile string `json:"dockerfile,omitempty"`
	// Credentials for the repository: a username with a password or
	// token (https), or a private key (ssh). Secret: answers mask them.
	Username   string `json:"username,omitempty"`
	Password   string `json:"password,omitempty"`
	SSHKey     string `json:"ssh_key,omitempty"`
	Submodules bool   `json:"submodules,omitempty"`
	// Image is the reference to re-tag into the hub (type image).
	Image string `json:"image,omitempty"`
	// BuildTimeout bounds a build in seconds; 0 takes the server's.
	BuildTimeout int `json:"build_timeout,omitempty"`
}

// Protocol of a port.
type Protocol string

const (
	ProtoHTTP Protocol = "http"
	ProtoTCP  Protocol = "tcp"
	ProtoUDP  Protocol = "udp"
	ProtoGRPC Protocol = "grpc"
)

// Valid reports whether p is a known protocol.
func (p Protocol) Valid() bool {
	return p == ProtoHTTP || p == ProtoTCP || p == ProtoUDP || p == ProtoGRPC
}

// Port is a container port. Inner ports are reachable by other components,
// outer ports are published by the gateway.
type Port struct {
	Port     int      `json:"port"`
	Protocol Protocol `json:"protocol"`
	Alias    string   `json:"alias"`
	Inner    bool     `json:"inner"`
	Outer    bool     `json:"outer"`
}

// DefaultSettleSeconds is the settle time of a component that sets none:
// long enough for a process that crashes right after it starts listening
// (or that a memory limit kills under its first load) to show it.
const DefaultSettleSeconds = 10

// Settle is how long a new instance must stay ready for a deploy to succeed.
func (c *Component) Settle() time.Duration {
	if c.SettleSeconds > 0 {
		return time.Duration(c.SettleSeconds) * time.Second
	}
	return DefaultSettleSeconds * time.Second
}

// MainPort is the port an app is told to listen on (PORT): the first HTTP
// port, else the first port; 0 when the component has none.
func (c *Component) MainPort() int {
	for _, p := range c.Ports {
		if p.Protocol == ProtoHTTP {
			return p.Port
		}
	}
	if len(c.Ports) > 0 {
		return c.Ports[0].Port
	}
	return 0
}

// EnvScope says who sees a variable: the component itself (inner), its
// dependents as connection info (outer), or both.
type EnvScope string

const (
	ScopeInner EnvScope = "inner"
	ScopeOuter EnvScope = "outer"
	ScopeBoth  EnvScope = "both"
)

// Valid reports whether s is a known scope.
func (s EnvScope) Valid() bool { return s == ScopeInner || s == ScopeOuter || s == ScopeBoth }

// Env is an environment variable of a component.
type Env struct {
	Name   string   `json:"name"`
	Value  string   `json:"value"`
	Scope  EnvScope `json:"scope"`
	Secret bool     `json:"secret"`
}

// Volume is persistent storage mounted into every instance.
type Volume struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Size int64  `json:"size"` // bytes; 0 means unlimited
	Type string `json:"type"` // "local" (default) or "memory"
}

// ProbeType is how a probe checks an instance.
type ProbeType string

const (
	ProbeTCP  ProbeType = "tcp"
	ProbeHTTP ProbeType = "http"
	ProbeExec ProbeType = "exec"
)

// Probe is a readiness or liveness check.
type Probe struct {
	Type                ProbeType `json:"type"`
	Port                int       `json:"port,omitempty"`
	Path                string    `json:"path,omitempty"`
	Command             []string  `json:"command,omitempty"`
	InitialDelaySeconds int       `json:"initial_delay_seconds,omitempty"`
	PeriodSeconds       int       `json:"period_seconds,omitempty"`
	TimeoutSeconds      int       `json:"timeout_seconds,omitempty"`
	SuccessThreshold    int       `json:"success_threshold,omitempty"`
	FailureThreshold    int       `json:"failure_threshold,omitempty"`
	// ExpectStatus is the HTTP status a healthy answer has; 0 accepts
	// 200-399.
	ExpectStatus int `json:"expect_status,omitempty"`
}

// Dependency says that component From (an alias) needs component To.
type Dependency struct {
	Team string `json:"team"`
	From string `json:"from"`
	To   string `json:"to"`
}
