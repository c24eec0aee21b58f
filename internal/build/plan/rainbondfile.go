package plan

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/berth-platform/berth/internal/model"
)

// Rainbondfile is Rainbond's per-repository build file (YAML, named
// "rainbondfile" at the repository root), honoured so that projects made
// for Rainbond build on berth unchanged.
type Rainbondfile struct {
	Language  string            `yaml:"language"`
	BuildPath string            `yaml:"buildpath"`
	Ports     []RainbondPort    `yaml:"ports"`
	Envs      map[string]string `yaml:"envs"`
	Cmd       string            `yaml:"cmd"`
}

// RainbondPort is one port of a rainbondfile.
type RainbondPort struct {
	Port     int    `yaml:"port"`
	Protocol string `yaml:"protocol"`
}

// rainbondfileNames: Rainbond reads "rainbondfile"; the capitalised form is
// a common spelling.
var rainbondfileNames = []string{"rainbondfile", "Rainbondfile"}

func parseRainbondfile(data []byte) (*Rainbondfile, error) {
	var raw struct {
		Language  string         `yaml:"language"`
		BuildPath string         `yaml:"buildpath"`
		Cmd       string         `yaml:"cmd"`
		Envs      map[string]any `yaml:"envs"`
		Ports     []struct {
			Port     int    `yaml:"port"`
			Protocol string `yaml:"protocol"`
			// Rainbond's own parser reads this misspelling; files written
			// for it use it.
			Procotol string `yaml:"procotol"`
		} `yaml:"ports"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	rf := Rainbondfile{Language: raw.Language, BuildPath: raw.BuildPath, Cmd: raw.Cmd}
	for _, p := range raw.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = p.Procotol
		}
		if p.Port < 1 || p.Port > 65535 {
			return nil, fmt.Errorf("port %d is not between 1 and 65535", p.Port)
		}
		rf.Ports = append(rf.Ports, RainbondPort{Port: p.Port, Protocol: strings.ToLower(proto)})
	}
	if len(raw.Envs) > 0 {
		rf.Envs = map[string]string{}
		for k, v := range raw.Envs {
			if v == nil {
				rf.Envs[k] = ""
			} else {
				rf.Envs[k] = fmt.Sprint(v)
			}
		}
	}
	return &rf, nil
}

// ModelPorts converts the rainbondfile's ports for a component. They are
// inner ports; opening them to the outside stays the user's decision.
func (r *Rainbondfile) ModelPorts() []model.Port {
	if r == nil {
		return nil
	}
	var out []model.Port
	for _, p := range r.Ports {
		proto := model.Protocol(p.Protocol)
		if !proto.Valid() {
			proto = model.ProtoHTTP
		}
		out = append(out, model.Port{Port: p.Port, Protocol: proto, Inner: true})
	}
	return out
}

// ModelEnvs converts the rainbondfile's envs, sorted by name.
func (r *Rainbondfile) ModelEnvs() []model.Env {
	if r == nil {
		return nil
	}
	names := make([]string, 0, len(r.Envs))
	for k := range r.Envs {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]model.Env, 0, len(names))
	for _, k := range names {
		out = append(out, model.Env{Name: k, Value: r.Envs[k], Scope: model.ScopeInner})
	}
	return out
}
