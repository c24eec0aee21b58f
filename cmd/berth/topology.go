package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

// newAppActionCmd starts or stops a whole app, following the event like
// the component operations do.
func newAppActionCmd(c *cli, name, short, long string) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   name + " [APP]",
		Short: short,
		Long: long + `

APP defaults to the selected app. The command prints the id of the
operation's event and follows its log until it ends, exiting with status 1
if it failed. With --detach it prints only the event id.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, team, app, err := c.appArg(cmd, args)
			if err != nil {
				return err
			}
			run := cl.StartApp
			if name == "stop" {
				run = cl.StopApp
			}
			id, err := run(ctx, team, app)
			if err != nil {
				return err
			}
			return c.followEvent(ctx, cl, id, detach)
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "print the event id and return without following the log")
	return cmd
}

// appArg resolves the optional APP argument of app-wide commands.
func (c *cli) appArg(cmd *cobra.Command, args []string) (*client.Client, string, string, error) {
	cl, team, err := c.session(cmd.Context())
	if err != nil {
		return nil, "", "", err
	}
	if len(args) == 1 {
		return cl, team, args[0], nil
	}
	app, err := c.requireApp()
	if err != nil {
		return nil, "", "", err
	}
	return cl, team, app, nil
}

func newTopologyCmd(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "topology [APP]",
		Aliases: []string{"topo"},
		Short:   "Show an app as a graph: gateway entries, components and dependencies",
		Long: `Show how an app hangs together: first what the gateway publishes (the
domains or TCP addresses of each component), then each component with its
status and an arrow to each component it depends on. Components of other
apps that are linked are shown with their app in brackets; a component
already drawn is marked with "↑" instead of being drawn again.`,
		Example: `  berth topology
  berth topology shop -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, app, err := c.appArg(cmd, args)
			if err != nil {
				return err
			}
			topo, err := cl.AppTopology(cmd.Context(), team, app)
			if err != nil {
				return err
			}
			return c.render(format, topo, func() {
				if len(topo.Nodes) == 0 {
					fmt.Fprintf(c.out(), "App %s has no components.\n", app)
					return
				}
				for _, l := range drawTopology(topo, app) {
					c.writeCells(l)
				}
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

// writeCells writes one line of coloured segments.
func (c *cli) writeCells(line []cell) {
	var b strings.Builder
	for _, s := range line {
		b.WriteString(c.paint(s.text, s.color))
	}
	fmt.Fprintln(c.out(), strings.TrimRight(b.String(), " "))
}

// topoDrawing builds the lines of a topology. Lines are lists of segments
// so that colours never count in the column arithmetic.
type topoDrawing struct {
	nodes    map[string]client.TopologyNode
	children map[string][]string
	app      string

	lines [][]cell
	// open holds the columns of branches ("│") that continue below the
	// line being drawn.
	open     map[int]bool
	drawn    map[string]bool
	drawing  map[string]bool
	gateways []client.TopologyEdge
}

func drawTopology(t *client.Topology, app string) [][]cell {
	d := &topoDrawing{
		nodes: map[string]client.TopologyNode{}, children: map[string][]string{}, app: app,
		open: map[int]bool{}, drawn: map[string]bool{}, drawing: map[string]bool{},
	}
	var order []string
	for _, n := range t.Nodes {
		if n.Kind == client.KindGateway {
			continue
		}
		d.nodes[n.ID] = n
		order = append(order, n.ID)
	}
	needed := map[string]bool{}
	for _, e := range t.Edges {
		switch e.Type {
		case client.EdgeDependency:
			d.children[e.From] = append(d.children[e.From], e.To)
			needed[e.To] = true
		case client.EdgeGateway:
			d.gateways = append(d.gateways, e)
		}
	}

	d.lines = append(d.lines, gatewayLines(d, d.gateways)...)

	// Components: what the gateway publishes first, then the other roots
	// (what nothing depends on), then whatever only cycles reach.
	var roots []string
	for _, e := range d.gateways {
		if !needed[e.To] {
			roots = append(roots, e.To)
		}
	}
	for _, id := range order {
		if !needed[id] {
			roots = append(roots, id)
		}
	}
	roots = append(roots, order...)
	for _, id := range roots {
		if d.drawn[id] {
			continue
		}
		d.lines = append(d.lines, nil)
		d.draw(id)
	}
	return d.lines
}

// gatewayLines draws one line per published component: its port and its
// addresses (domains, TCP address) each in a column of its own, so that the
// columns line up whatever the width of a port or whether an entry has one.
func gatewayLines(d *topoDrawing, gateways []client.TopologyEdge) [][]cell {
	rows := make([][]string, len(gateways))
	heads := make([][]cell, len(gateways))
	for i, e := range gateways {
		heads[i] = append([]cell{{text: "gateway ─▶ "}}, d.label(e.To)...)
		port := ""
		if e.Port > 0 {
			port = ":" + strconv.Itoa(e.Port)
		}
		where := slices.Clone(e.Domains)
		if e.TCPAddress != "" {
			where = append(where, "tcp "+e.TCPAddress)
		}
		rows[i] = []string{port, strings.Join(where, ", ")}
	}
	headWidth := 0
	for _, h := range heads {
		headWidth = max(headWidth, cellsWidth(h))
	}
	colWidths := make([]int, 2)
	for _, r := range rows {
		for j, v := range r {
			colWidths[j] = max(colWidths[j], displayWidth(v))
		}
	}
	lines := make([][]cell, len(gateways))
	for i, h := range heads {
		var b strings.Builder
		b.WriteString(strings.Repeat(" ", headWidth-cellsWidth(h)+3))
		for j, v := range rows[i] {
			if colWidths[j] == 0 {
				continue
			}
			b.WriteString(v + strings.Repeat(" ", colWidths[j]-displayWidth(v)+2))
		}
		lines[i] = append(h, cell{text: b.String()})
	}
	return lines
}

// label is "alias (status)", with the app of a component of another app.
func (d *topoDrawing) label(id string) []cell {
	n, ok := d.nodes[id]
	if !ok {
		return []cell{{text: id}}
	}
	status := orDash(n.Status)
	out := []cell{{text: id + " ("}, {text: status, color: componentColors[status]}, {text: ")"}}
	if n.App != "" && n.App != d.app {
		out = append(out, cell{text: " [" + n.App + "]", color: colorGrey})
	}
	return out
}

func (d *topoDrawing) write(segments ...cell) {
	last := len(d.lines) - 1
	d.lines[last] = append(d.lines[last], segments...)
}

func (d *topoDrawing) col() int { return cellsWidth(d.lines[len(d.lines)-1]) }

// newline starts a line with the open branches drawn up to column col.
func (d *topoDrawing) newline(col int) {
	var b strings.Builder
	for i := 0; i < col; i++ {
		if d.open[i] {
			b.WriteString("│")
		} else {
			b.WriteByte(' ')
		}
	}
	d.lines = append(d.lines, []cell{{text: b.String()}})
}

// draw writes id at the end of the current line, then its dependencies:
// one after an arrow on the same line, several as branches below.
func (d *topoDrawing) draw(id string) {
	d.write(d.label(id)...)
	kids := d.children[id]
	switch {
	case d.drawing[id]:
		d.write(cell{text: " (cycle)", color: colorRed})
		return
	case d.drawn[id]:
		if len(kids) > 0 {
			d.write(cell{text: " ↑", color: colorGrey})
		}
		return
	}
	d.drawn[id], d.drawing[id] = true, true
	defer func() { d.drawing[id] = false }()
	if len(kids) == 1 {
		d.write(cell{text: " ─▶ "})
		d.draw(kids[0])
		return
	}
	if len(kids) == 0 {
		return
	}
	branch := d.col() + 2
	d.write(cell{text: " ─┬▶ "})
	d.open[branch] = true
	d.draw(kids[0])
	for i, kid := range kids[1:] {
		d.newline(branch)
		if i == len(kids)-2 {
			delete(d.open, branch)
			d.write(cell{text: "└▶ "})
		} else {
			d.write(cell{text: "├▶ "})
		}
		d.draw(kid)
	}
}

func cellsWidth(cells []cell) int {
	n := 0
	for _, c := range cells {
		n += displayWidth(c.text)
	}
	return n
}
