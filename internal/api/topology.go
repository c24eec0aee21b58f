package api

import (
	"net/http"

	"github.com/berth-platform/berth/internal/model"
)

// topologyNode is a component, or the gateway as the entry point.
type topologyNode struct {
	ID            string                `json:"id"` // component alias, or "gateway"
	Kind          string                `json:"kind"`
	App           string                `json:"app,omitempty"`
	Status        model.ComponentStatus `json:"status,omitempty"`
	StatusLabel   string                `json:"status_label,omitempty"`
	StatusMessage string                `json:"status_message,omitempty"`
	Replicas      int                   `json:"replicas"`
	Ready         int                   `json:"ready"`
}

// topologyEdge is a dependency (from needs to) or a gateway entry (the
// gateway publishes to at the domains or TCP address).
type topologyEdge struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Type    string   `json:"type"` // dependency or gateway
	Port    int      `json:"port,omitempty"`
	Domains []string `json:"domains,omitempty"`
	TCP     string   `json:"tcp_address,omitempty"`
}

// topology is the app as a graph for the console: its components with
// their statuses, their dependencies (also on components of other apps of
// the team, shown as nodes of their own app), and the gateway's entries.
func (a *API) topology(w http.ResponseWriter, r *http.Request) error {
	team, app, err := a.appAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	ctx := r.Context()
	comps, err := a.store.ListComponents(ctx, team.Name, "")
	if err != nil {
		return err
	}
	deps, err := a.store.ListDependencies(ctx, team.Name)
	if err != nil {
		return err
	}
	httpRules, tcpRules, err := a.teamRules(ctx, team.Name)
	if err != nil {
		return err
	}
	byAlias := map[string]*model.Component{}
	for i := range comps {
		byAlias[comps[i].Alias] = &comps[i]
	}
	nodes := []topologyNode{}
	edges := []topologyEdge{}
	added := map[string]bool{}
	addNode := func(c *model.Component) error {
		if added[c.Alias] {
			return nil
		}
		added[c.Alias] = true
		instances, err := a.instancesOf(ctx, c)
		if err != nil {
			return err
		}
		n := topologyNode{ID: c.Alias, Kind: string(c.Kind), App: c.App, Status: c.Status, StatusLabel: c.Status.Label(),
			StatusMessage: c.StatusMessage, Replicas: c.Instances}
		for _, in := range instances {
			if in.Status == model.InstanceRunning {
				n.Ready++
			}
		}
		nodes = append(nodes, n)
		return nil
	}
	for i := range comps {
		c := &comps[i]
		if c.App != app.Name {
			continue
		}
		if err := addNode(c); err != nil {
			return err
		}
		for port, pub := range a.publications(c, httpRules, tcpRules) {
			if len(pub.Domains) > 0 || pub.TCPAddress != "" {
				edges = append(edges, topologyEdge{From: "gateway", To: c.Alias, Type: "gateway", Port: port, Domains: pub.Domains, TCP: pub.TCPAddress})
			}
		}
	}
	for _, d := range deps {
		from, to := byAlias[d.From], byAlias[d.To]
		if from == nil || to == nil || (from.App != app.Name && to.App != app.Name) {
			continue
		}
		// A dependency across apps brings the other app's component in.
		for _, c := range []*model.Component{from, to} {
			if err := addNode(c); err != nil {
				return err
			}
		}
		edges = append(edges, topologyEdge{From: d.From, To: d.To, Type: "dependency"})
	}
	for _, e := range edges {
		if e.Type == "gateway" {
			nodes = append(nodes, topologyNode{ID: "gateway", Kind: "gateway"})
			break
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes, "edges": edges})
	return nil
}
