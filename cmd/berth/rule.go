package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newRuleCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rule",
		Aliases: []string{"rules"},
		Short:   "Publish component ports through the gateway",
	}
	cmd.AddCommand(newHTTPRuleCmd(c), newTCPRuleCmd(c))
	return cmd
}

func newHTTPRuleCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "http",
		Short: "Route domains and paths to component ports",
	}

	var spec client.HTTPRuleSpec
	var headers []string
	add := &cobra.Command{
		Use:   "add DOMAIN --component ALIAS --port PORT [--path /prefix] [--weight 1-100]",
		Short: "Route a domain (and path prefix) to a component port",
		Long: `Route requests for DOMAIN whose path starts with --path to a component's
outer port. Rules with the same domain and path split the traffic by weight.
--cert serves HTTPS with a certificate added by "berth cert add".`,
		Example: `  berth rule http add shop.example.com --component web --port 80
  berth rule http add shop.example.com --component api --port 8080 --path /api --cert shop`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Domain = args[0]
			for _, h := range headers {
				k, v, err := parseAssignment(h)
				if err != nil {
					return fmt.Errorf("--header: %w", err)
				}
				if spec.Headers == nil {
					spec.Headers = map[string]string{}
				}
				spec.Headers[k] = v
			}
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			r, err := cl.CreateHTTPRule(cmd.Context(), team, spec)
			if err != nil {
				return err
			}
			scheme := "http"
			if r.Certificate != "" {
				scheme = "https"
			}
			fmt.Fprintf(c.out(), "Added rule %s: %s://%s%s -> %s:%d.\n", r.ID, scheme, r.Domain, r.Path, r.Component, r.Port)
			return nil
		},
	}
	f := add.Flags()
	f.StringVar(&spec.Component, "component", "", "alias of the component to route to")
	f.IntVar(&spec.Port, "port", 0, "port of the component")
	f.StringVar(&spec.Path, "path", "", "path prefix (default /)")
	f.IntVar(&spec.Weight, "weight", 0, "share of the traffic among rules of the same domain and path, 1-100 (default 100)")
	f.StringVar(&spec.Certificate, "cert", "", "certificate name, to serve HTTPS")
	f.StringArrayVar(&headers, "header", nil, "request header NAME=VALUE to set (repeatable)")
	_ = add.MarkFlagRequired("component")
	_ = add.MarkFlagRequired("port")

	var format string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the team's HTTP rules",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			rules, err := cl.ListHTTPRules(cmd.Context(), team)
			if err != nil {
				return err
			}
			return c.render(format, rules, func() {
				t := newTable("ID", "DOMAIN", "PATH", "COMPONENT", "PORT", "WEIGHT", "CERTIFICATE")
				for _, r := range rules {
					t.row(r.ID, r.Domain, r.Path, r.Component, r.Port, r.Weight, orDash(r.Certificate))
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(list, &format)

	cmd.AddCommand(add, list, &cobra.Command{
		Use:     "remove ID",
		Aliases: []string{"rm"},
		Short:   "Remove an HTTP rule",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			if err := cl.DeleteHTTPRule(cmd.Context(), team, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Removed rule %s.\n", args[0])
			return nil
		},
	})
	return cmd
}

func newTCPRuleCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tcp",
		Short: "Publish component ports on gateway ports",
	}

	var spec client.TCPRuleSpec
	add := &cobra.Command{
		Use:     "add --component ALIAS --port PORT [--gateway-port N]",
		Short:   "Publish a component port on a gateway port (a free one by default)",
		Example: "  berth rule tcp add --component db --port 5432",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			r, err := cl.CreateTCPRule(cmd.Context(), team, spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Added rule %s: gateway port %d -> %s:%d.\n", r.ID, r.GatewayPort, r.Component, r.Port)
			return nil
		},
	}
	f := add.Flags()
	f.StringVar(&spec.Component, "component", "", "alias of the component to publish")
	f.IntVar(&spec.Port, "port", 0, "port of the component")
	f.IntVar(&spec.GatewayPort, "gateway-port", 0, "gateway port to listen on (default: a free one)")
	_ = add.MarkFlagRequired("component")
	_ = add.MarkFlagRequired("port")

	var format string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the team's TCP rules",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			rules, err := cl.ListTCPRules(cmd.Context(), team)
			if err != nil {
				return err
			}
			return c.render(format, rules, func() {
				t := newTable("ID", "GATEWAY PORT", "COMPONENT", "PORT", "CREATED")
				for _, r := range rules {
					t.row(r.ID, r.GatewayPort, r.Component, r.Port, ago(r.CreatedAt))
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(list, &format)

	cmd.AddCommand(add, list, &cobra.Command{
		Use:     "remove ID",
		Aliases: []string{"rm"},
		Short:   "Remove a TCP rule and free its gateway port",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			if err := cl.DeleteTCPRule(cmd.Context(), team, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Removed rule %s.\n", args[0])
			return nil
		},
	})
	return cmd
}
