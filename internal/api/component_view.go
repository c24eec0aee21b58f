package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/berth-platform/berth/internal/build/source"
	"github.com/berth-platform/berth/internal/model"
)

// quantity is a size or CPU amount written as a string ("512Mi", "500m") or
// a bare JSON number.
type quantity string

func (q *quantity) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*q = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*q = quantity(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("must be a string like \"512Mi\" or a number")
	}
	*q = quantity(n.String())
	return nil
}

// volumeIO is a volume as the API reads and writes it (size as a quantity).
type volumeIO struct {
	Name string   `json:"name"`
	Path string   `json:"path"`
	Size quantity `json:"size,omitempty"`
	Type string   `json:"type,omitempty"`
}

func (v volumeIO) toModel(field string) (model.Volume, error) {
	size, err := model.ParseBytes(field+".size", string(v.Size))
	if err != nil {
		return model.Volume{}, err
	}
	return model.Volume{Name: v.Name, Path: v.Path, Size: size, Type: v.Type}, nil
}

func volumeView(v model.Volume) volumeIO {
	return volumeIO{Name: v.Name, Path: v.Path, Size: quantity(model.FormatBytes(v.Size)), Type: v.Type}
}

// componentInput is the body of create (all fields) and PATCH (present
// fields change). Pointers tell "absent" from "zero".
type componentInput struct {
	Alias     *string         `json:"alias"`
	Kind      *model.Kind     `json:"kind"`
	Image     *string         `json:"image"`
	Source    json.RawMessage `json:"source"` // merged onto the stored source (mergeSource)
	Endpoints *[]string       `json:"endpoints"`
	Instances json.RawMessage `json:"instances"` // a count; the list a GET returns is ignored
	Replicas  *int            `json:"replicas"`
	Memory    *quantity       `json:"memory"`
	CPU       *quantity       `json:"cpu"`
	Cmd       *[]string       `json:"cmd"`
	Args      *[]string       `json:"args"`
	Ports     *[]portInput    `json:"ports"`
	Envs      *[]model.Env    `json:"envs"`
	Volumes   *[]volumeIO     `json:"volumes"`
	Readiness json.RawMessage `json:"readiness"`
	Liveness  json.RawMessage `json:"liveness"`
	// SettleSeconds: how long new instances must stay ready for a deploy
	// to succeed (0 = the default).
	SettleSeconds *int `json:"settle_seconds"`

	// Read-only fields of a GET, accepted and ignored so that a client can
	// send back what it read.
	ID            json.RawMessage `json:"id"`
	Team          json.RawMessage `json:"team"`
	App           json.RawMessage `json:"app"`
	Status        json.RawMessage `json:"status"`
	StatusLabel   json.RawMessage `json:"status_label"`
	StatusMessage json.RawMessage `json:"status_message"`
	DeployVersion json.RawMessage `json:"deploy_version"`
	Dependencies  json.RawMessage `json:"dependencies"`
	CreatedAt     json.RawMessage `json:"created_at"`
	UpdatedAt     json.RawMessage `json:"updated_at"`
	Registered    json.RawMessage `json:"registered_endpoints"`
	EndpointKey   json.RawMessage `json:"endpoint_key"`
	Restart       json.RawMessage `json:"restart_pending"`
	Webhook       json.RawMessage `json:"webhook"`
	BuildState    json.RawMessage `json:"build_state"`
}

// portInput is a port as written, accepting the read-only fields a GET
// shows so that a client can send back what it read.
type portInput struct {
	model.Port
	InnerAddress json.RawMessage `json:"inner_address"`
	Domains      json.RawMessage `json:"domains"`
	URLs         json.RawMessage `json:"urls"`
	TCPAddress   json.RawMessage `json:"tcp_address"`
}

// count reads the desired number of instances from "replicas" or from
// "instances" when that is a number.
func (in *componentInput) count() (*int, error) {
	if in.Replicas != nil {
		return in.Replicas, nil
	}
	raw := bytes.TrimSpace(in.Instances)
	if len(raw) == 0 || raw[0] == '[' || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, badRequest("field \"instances\" must be a whole number of instances (got %s)", raw)
	}
	return &n, nil
}

// apply writes the present fields onto c.
func (in *componentInput) apply(c *model.Component) error {
	if in.Alias != nil {
		c.Alias = *in.Alias
	}
	if in.Kind != nil {
		c.Kind = *in.Kind
	}
	if in.Image != nil {
		c.Image = *in.Image
	}
	if len(in.Source) > 0 && !bytes.Equal(in.Source, []byte("null")) {
		src, err := mergeSource(in.Source, c.Source)
		if err != nil {
			return err
		}
		c.Source = src
	}
	if in.Endpoints != nil {
		c.Endpoints = *in.Endpoints
	}
	n, err := in.count()
	if err != nil {
		return err
	}
	if n != nil {
		c.Instances = *n
	}
	if in.Memory != nil {
		n, err := model.ParseBytes("memory", string(*in.Memory))
		if err != nil {
			return err
		}
		c.Memory = n
	}
	if in.CPU != nil {
		n, err := model.ParseCPU("cpu", string(*in.CPU))
		if err != nil {
			return err
		}
		c.CPU = n
	}
	if in.Cmd != nil {
		c.Cmd = *in.Cmd
	}
	if in.Args != nil {
		c.Args = *in.Args
	}
	if in.Ports != nil {
		c.Ports = make([]model.Port, len(*in.Ports))
		for i, p := range *in.Ports {
			c.Ports[i] = p.Port
		}
	}
	if in.Envs != nil {
		c.Envs = *in.Envs
	}
	if in.Volumes != nil {
		c.Volumes = nil
		for i, v := range *in.Volumes {
			mv, err := v.toModel(fmt.Sprintf("volumes[%d]", i))
			if err != nil {
				return err
			}
			c.Volumes = append(c.Volumes, mv)
		}
	}
	if c.Readiness, err = probeInput("readiness", in.Readiness, c.Readiness); err != nil {
		return err
	}
	if c.Liveness, err = probeInput("liveness", in.Liveness, c.Liveness); err != nil {
		return err
	}
	if in.SettleSeconds != nil {
		c.SettleSeconds = *in.SettleSeconds
	}
	return nil
}

// keepCredentials lets a client send back the masked credentials it read:
// they keep the stored values while the repository stays on the same host.
// A source moved to another host drops them (and the user name that went
// with them) unless the request gives new ones, so that a password is
// never sent to a host it was not given for.
func keepCredentials(in, old *model.Source) {
	if old == nil {
		return
	}
	sameHost := source.RemoteHost(in.URL) == source.RemoteHost(old.URL)
	keep := func(v *string, stored string) bool {
		if *v != secretMask {
			return false
		}
		*v = ""
		if sameHost {
			*v = stored
		}
		return true
	}
	maskedPassword := keep(&in.Password, old.Password)
	maskedKey := keep(&in.SSHKey, old.SSHKey)
	if !sameHost && in.Username == old.Username && in.Password == "" && in.SSHKey == "" && (maskedPassword || maskedKey) {
		in.Username = ""
	}
}

// mergeSource applies a source given in a request onto the stored one: the
// fields present change, the others stay ({"source": {"language": "go"}}
// keeps the URL, branch and credentials). Stored credentials follow only
// to the same host (keepCredentials).
func mergeSource(raw json.RawMessage, old *model.Source) (*model.Source, error) {
	var present map[string]json.RawMessage
	if err := json.Unmarshal(raw, &present); err != nil {
		return nil, badRequest("source: %v", err)
	}
	merged := model.Source{}
	if old != nil {
		merged = *old
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&merged); err != nil {
		return nil, badRequest("source: %v", err)
	}
	if old == nil {
		return &merged, nil
	}
	// An absent credential is a stored one the client did not send back:
	// the same as sending its mask.
	for key, field := range map[string]*string{"password": &merged.Password, "ssh_key": &merged.SSHKey} {
		if _, ok := present[key]; !ok && *field != "" {
			*field = secretMask
		}
	}
	keepCredentials(&merged, old)
	return &merged, nil
}

// probeInput: absent keeps the old probe, null removes it.
func probeInput(field string, raw json.RawMessage, old *model.Probe) (*model.Probe, error) {
	if len(raw) == 0 {
		return old, nil
	}
	if bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var p model.Probe
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, badRequest("%s: %v", field, err)
	}
	return &p, nil
}

// secretMask replaces secret values in every answer.
const secretMask = "******"

// componentView is a component as the API answers it. "instances" is the
// list of running instances; the desired count is "replicas".
type componentView struct {
	ID        string        `json:"id"`
	Team      string        `json:"team"`
	App       string        `json:"app"`
	Alias     string        `json:"alias"`
	Kind      model.Kind    `json:"kind"`
	Image     string        `json:"image,omitempty"`
	Source    *model.Source `json:"source,omitempty"`
	Endpoints []string      `json:"endpoints,omitempty"`
	// Registered endpoints and the key a thirdparty service registers
	// them with (PUT .../endpoints).
	RegisteredEndpoints []string              `json:"registered_endpoints,omitempty"`
	EndpointKey         string                `json:"endpoint_key,omitempty"`
	Replicas            int                   `json:"replicas"`
	Instances           []model.Instance      `json:"instances"`
	Memory              string                `json:"memory"`
	CPU                 string                `json:"cpu"`
	Cmd                 []string              `json:"cmd"`
	Args                []string              `json:"args"`
	Ports               []portView            `json:"ports"`
	Envs                []model.Env           `json:"envs"`
	Volumes             []volumeIO            `json:"volumes"`
	Readiness           *model.Probe          `json:"readiness"`
	Liveness            *model.Probe          `json:"liveness"`
	SettleSeconds       int                   `json:"settle_seconds"`
	Status              model.ComponentStatus `json:"status"`
	StatusLabel         string                `json:"status_label"`
	StatusMessage       string                `json:"status_message,omitempty"`
	// Webhook triggers builds on git pushes (source components).
	Webhook *webhookView `json:"webhook,omitempty"`
	// BuildState is building or failed (the last good version runs).
	BuildState string `json:"build_state,omitempty"`
	// RestartPending says why the instances are out of date.
	RestartPending string    `json:"restart_pending,omitempty"`
	DeployVersion  int64     `json:"deploy_version"`
	Dependencies   []string  `json:"dependencies"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func redactEnvs(envs []model.Env) []model.Env {
	out := make([]model.Env, len(envs))
	for i, e := range envs {
		if e.Secret {
			e.Value = secretMask
		}
		out[i] = e
	}
	return out
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

// redactSource masks a source's credentials.
func redactSource(s *model.Source) *model.Source {
	if s == nil {
		return nil
	}
	cp := *s
	if cp.Password != "" {
		cp.Password = secretMask
	}
	if cp.SSHKey != "" {
		cp.SSHKey = secretMask
	}
	return &cp
}

// portView is a port with the stable address other components reach it at
// and, when it is published, the domains and TCP address users reach it at.
type portView struct {
	model.Port
	InnerAddress string `json:"inner_address,omitempty"`
	publication
}

func viewComponent(c *model.Component, deps []string, instances []model.Instance, addresses map[int]string, pubs map[int]publication) componentView {
	v := componentView{
		ID: c.ID, Team: c.Team, App: c.App, Alias: c.Alias, Kind: c.Kind, Image: c.Image,
		Source: redactSource(c.Source), Endpoints: c.Endpoints, Replicas: c.Instances,
		Instances: nonNil(instances), Memory: model.FormatBytes(c.Memory), CPU: model.FormatCPU(c.CPU),
		Cmd: nonNil(c.Cmd), Args: nonNil(c.Args), Ports: []portView{}, Envs: redactEnvs(c.Envs),
		Readiness: c.Readiness, Liveness: c.Liveness, SettleSeconds: int(c.Settle() / time.Second), Status: c.Status, StatusLabel: c.Status.Label(),
		StatusMessage: c.StatusMessage, DeployVersion: c.DeployVersion, Dependencies: nonNil(deps),
		RegisteredEndpoints: c.RegisteredEndpoints, EndpointKey: c.EndpointKey, RestartPending: c.RestartPending,
		BuildState: c.BuildState, Webhook: viewWebhook(c),
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	for _, p := range c.Ports {
		v.Ports = append(v.Ports, portView{Port: p, InnerAddress: addresses[p.Port], publication: pubs[p.Port]})
	}
	v.Volumes = []volumeIO{}
	for _, vol := range c.Volumes {
		v.Volumes = append(v.Volumes, volumeView(vol))
	}
	return v
}

// pathInt reads a numeric path segment.
func pathInt(value, what string) (int64, error) {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("%s must be a number (got %q)", what, value)
	}
	return n, nil
}
