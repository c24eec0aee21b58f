package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

// parsePort reads PORT[/PROTOCOL][:inner,outer]. A port with neither
// exposure is made inner: one reachable by nobody would be useless.
func parsePort(s string) (client.Port, error) {
	var p client.Port
	spec, exposures, hasExposure := strings.Cut(s, ":")
	number, proto, _ := strings.Cut(spec, "/")
	n, err := strconv.Atoi(number)
	if err != nil || n < 1 || n > 65535 {
		return p, fmt.Errorf("%q is not PORT[/PROTOCOL][:inner,outer] with PORT between 1 and 65535", s)
	}
	p.Port, p.Protocol = n, proto
	if hasExposure {
		for _, e := range strings.Split(exposures, ",") {
			switch strings.TrimSpace(e) {
			case "inner":
				p.Inner = true
			case "outer":
				p.Outer = true
			default:
				return p, fmt.Errorf("%q: exposure must be inner, outer or inner,outer (got %q)", s, e)
			}
		}
	}
	if !p.Inner && !p.Outer {
		p.Inner = true
	}
	return p, nil
}

// exposure describes who reaches a port.
func exposure(p client.Port) string {
	switch {
	case p.Inner && p.Outer:
		return "inner,outer"
	case p.Outer:
		return "outer"
	case p.Inner:
		return "inner"
	}
	return "closed"
}

// printPublication says where the gateway publishes a port, read from the
// component's view (the answer to a port change is the bare port).
func (c *cli) printPublication(cmd *cobra.Command, cl *client.Client, ref client.ComponentRef, port int) error {
	comp, err := cl.GetComponent(cmd.Context(), ref)
	if err != nil {
		return fmt.Errorf("the port is changed, but reading where it is published failed: %w", err)
	}
	for _, cp := range comp.Ports {
		if cp.Port != port {
			continue
		}
		for _, u := range cp.URLs {
			fmt.Fprintf(c.out(), "Published at %s\n", u)
		}
		if cp.TCPAddress != "" {
			fmt.Fprintf(c.out(), "Published at %s (TCP)\n", cp.TCPAddress)
		}
		if len(cp.URLs) == 0 && cp.TCPAddress == "" {
			fmt.Fprintf(c.out(), "Not published yet; route a domain to it with \"berth rule http add DOMAIN --component %s --port %d\".\n",
				ref.Component, port)
		}
	}
	return nil
}

func newPortCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "port",
		Short: "Add, list and remove ports of a component",
		Long: `Inner ports are reachable by the other components of the team (their
dependents get the address in environment variables); outer ports can be
published by the gateway ("berth rule").`,
	}

	var inner, outer bool
	var alias string
	add := &cobra.Command{
		Use:   "add ALIAS PORT[/PROTOCOL] [--inner] [--outer]",
		Short: "Add a port (inner when neither --inner nor --outer is given)",
		Example: `  berth port add web 8080 --outer
  berth port add db 5432/tcp`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parsePort(args[1])
			if err != nil {
				return err
			}
			if inner || outer {
				// The flags say exactly what the user wants; the default
				// inner of parsePort must not add to them.
				explicit := strings.Contains(args[1], ":")
				p.Inner = inner || (explicit && p.Inner)
				p.Outer = outer || (explicit && p.Outer)
			}
			p.Alias = alias
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			added, err := cl.AddPort(cmd.Context(), ref, p)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Added port %d/%s (%s) to %s.\n", added.Port, added.Protocol, exposure(*added), ref.Component)
			if !added.Outer {
				return nil
			}
			return c.printPublication(cmd, cl, ref, added.Port)
		},
	}
	add.Flags().BoolVar(&inner, "inner", false, "reachable by the team's other components")
	add.Flags().BoolVar(&outer, "outer", false, "may be published by the gateway")
	add.Flags().StringVar(&alias, "alias", "", "prefix of the variables dependents get (default: the component alias in upper case)")

	update := &cobra.Command{
		Use:   "update ALIAS PORT [--outer[=false]] [--inner[=false]] [--alias NAME]",
		Short: "Open or close a port to dependents (inner) or to the gateway (outer)",
		Example: `  berth port update web 8080 --outer
  berth port update web 8080 --outer=false`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("%q is not a port number", args[1])
			}
			var patch client.PortPatch
			if cmd.Flags().Changed("inner") {
				patch.Inner = &inner
			}
			if cmd.Flags().Changed("outer") {
				patch.Outer = &outer
			}
			if cmd.Flags().Changed("alias") {
				patch.Alias = &alias
			}
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			p, err := cl.UpdatePort(cmd.Context(), ref, n, patch)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Port %d/%s of %s is %s.\n", p.Port, p.Protocol, ref.Component, exposure(*p))
			if !p.Outer {
				return nil
			}
			return c.printPublication(cmd, cl, ref, p.Port)
		},
	}
	update.Flags().BoolVar(&inner, "inner", false, "reachable by the team's other components")
	update.Flags().BoolVar(&outer, "outer", false, "published by the gateway")
	update.Flags().StringVar(&alias, "alias", "", "prefix of the variables dependents get")

	var format string
	list := &cobra.Command{
		Use:     "list ALIAS",
		Aliases: []string{"ls"},
		Short:   "List the ports of a component",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// The component's view of its ports says where they are reached;
			// the port list has the settings only.
			comp, err := cl.GetComponent(cmd.Context(), ref)
			if err != nil {
				return err
			}
			ports := comp.Ports
			if ports == nil {
				ports = []client.Port{}
			}
			return c.render(format, ports, func() {
				if len(ports) == 0 {
					fmt.Fprintf(c.out(), "No ports; add one with \"berth port add %s PORT[/PROTOCOL]\".\n", ref.Component)
					return
				}
				t := newTable("PORT", "PROTOCOL", "INNER", "OUTER", "ENV PREFIX", "INNER ADDRESS", "PUBLISHED AT")
				for _, p := range ports {
					published := publishedAt(p)
					first := "-"
					if len(published) > 0 {
						first = published[0]
					}
					t.row(p.Port, p.Protocol, yesNo(p.Inner), yesNo(p.Outer), orDash(p.Alias), orDash(p.InnerAddress), first)
					for _, more := range published[min(1, len(published)):] {
						t.row("", "", "", "", "", "", more)
					}
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(list, &format)

	cmd.AddCommand(add, update, list, &cobra.Command{
		Use:     "remove ALIAS PORT",
		Aliases: []string{"rm"},
		Short:   "Remove a port",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(strings.SplitN(args[1], "/", 2)[0])
			if err != nil {
				return fmt.Errorf("%q is not a port number", args[1])
			}
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := cl.RemovePort(cmd.Context(), ref, n); err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Removed port %d from %s.\n", n, ref.Component)
			return nil
		},
	})
	return cmd
}

// publishedAt lists where users reach a port: its URLs, else its domains,
// then its TCP address.
func publishedAt(p client.Port) []string {
	var out []string
	if len(p.URLs) > 0 {
		out = append(out, p.URLs...)
	} else {
		out = append(out, p.Domains...)
	}
	if p.TCPAddress != "" {
		out = append(out, "tcp://"+p.TCPAddress)
	}
	return out
}
