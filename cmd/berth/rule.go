package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
	"github.com/berth-platform/berth/internal/model"
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
	var maxBody string
	add := &cobra.Command{
		Use:   "add DOMAIN --component ALIAS --port PORT [--path /prefix] [--weight 1-100] [options]",
		Short: "Route a domain (and path prefix) to a component port",
		Long: `Route requests for DOMAIN whose path starts with --path to a component's
outer port. Rules with the same domain and path split the traffic by weight.
--cert serves HTTPS with a certificate added by "berth cert add", --auto-tls
with one berth gets over ACME.` + httpRuleOptionsHelp,
		Example: `  berth rule http add shop.example.com --component web --port 80 --auto-tls --redirect-https
  berth rule http add shop.example.com --component api --port 8080 --path /api --rewrite / --cert shop
  berth rule http add up.example.com --component upload --port 80 --max-body 100Mi --read-timeout 300
  berth rule http add api.example.com --component api --port 8080 --rate-limit 20 --rate-burst 40`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Domain = args[0]
			h, err := parseHeaders(headers)
			if err != nil {
				return err
			}
			spec.Headers = h
			if cmd.Flags().Changed("max-body") {
				if spec.MaxBodySize, err = parseSize("--max-body", maxBody); err != nil {
					return err
				}
			}
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			r, err := cl.CreateHTTPRule(cmd.Context(), team, spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Added rule %s: %s -> %s:%d.\n", r.ID, ruleURL(r), r.Component, r.Port)
			if opts := ruleOptions(r); opts != "" {
				fmt.Fprintf(c.out(), "Options: %s\n", opts)
			}
			return nil
		},
	}
	f := add.Flags()
	f.StringVar(&spec.Component, "component", "", "alias of the component to route to")
	f.IntVar(&spec.Port, "port", 0, "port of the component")
	f.StringVar(&spec.Path, "path", "", "path prefix (default /)")
	f.IntVar(&spec.Weight, "weight", 0, "share of the traffic among rules of the same domain and path, 1-100 (default 100)")
	f.StringVar(&spec.Certificate, "cert", "", "certificate name, to serve HTTPS")
	f.StringArrayVar(&headers, "header", nil, "only requests with header NAME=VALUE (repeatable)")
	f.StringVar(&spec.RewritePath, "rewrite", "", "replace the matched path prefix upstream with PATH")
	f.IntVar(&spec.ConnectTimeout, "connect-timeout", 0, "seconds to connect to an instance (default 5)")
	f.IntVar(&spec.ReadTimeout, "read-timeout", 0, "seconds to wait for the response headers (default 60)")
	f.IntVar(&spec.SendTimeout, "send-timeout", 0, "seconds to send the request body (default 60)")
	f.StringVar(&maxBody, "max-body", "", "largest request body, e.g. 10Mi (default: no limit)")
	f.Float64Var(&spec.RateLimit, "rate-limit", 0, "requests a second the route accepts (default: no limit)")
	f.IntVar(&spec.RateBurst, "rate-burst", 0, "requests above the rate accepted in a burst (default: the rate)")
	f.BoolVar(&spec.RedirectHTTPS, "redirect-https", false, "answer plain-HTTP requests with a redirect to https")
	f.BoolVar(&spec.AutoTLS, "auto-tls", false, "get and renew a certificate for the domain over ACME")
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
				t := newTable("ID", "DOMAIN", "PATH", "COMPONENT", "PORT", "WEIGHT", "CERTIFICATE", "OPTIONS")
				for _, r := range rules {
					t.row(r.ID, r.Domain, r.Path, r.Component, r.Port, r.Weight, orDash(r.Certificate), orDash(ruleOptions(&r)))
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(list, &format)

	cmd.AddCommand(add, newHTTPRuleUpdateCmd(c), list, &cobra.Command{
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

const httpRuleOptionsHelp = `

Options: --rewrite replaces the matched prefix upstream (--path /api
--rewrite / sends /api/x as /x); --connect-timeout, --read-timeout and
--send-timeout are seconds (0: the defaults 5, 60, 60); --max-body limits
request bodies (e.g. 10Mi; larger ones get 413); --rate-limit accepts that
many requests a second, --rate-burst that many more at once (others get 503);
--redirect-https sends plain-HTTP requests to https.`

func newHTTPRuleUpdateCmd(c *cli) *cobra.Command {
	var (
		domain, path, component, cert, rewrite, maxBody string
		port, weight, connectTimeout, readTimeout       int
		sendTimeout, rateBurst                          int
		rateLimit                                       float64
		redirectHTTPS, autoTLS                          bool
		headers                                         []string
	)
	cmd := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change an HTTP rule; only the flags given change",
		Long: `Change an HTTP rule: only the flags given change, the rest stays. A zero
value resets an option to its default (--max-body 0: no limit, --rewrite "":
no rewrite), --redirect-https=false and --auto-tls=false turn those off, and
--header replaces all header conditions (--header "" removes them).` + httpRuleOptionsHelp,
		Example: `  berth rule http update http-4sqj7wig7lyrhhjk --read-timeout 120 --max-body 50Mi
  berth rule http update http-4sqj7wig7lyrhhjk --rate-limit 0 --redirect-https=false`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var patch client.HTTPRulePatch
			f := cmd.Flags()
			setString := func(flag string, v *string, dst **string) {
				if f.Changed(flag) {
					*dst = v
				}
			}
			setInt := func(flag string, v *int, dst **int) {
				if f.Changed(flag) {
					*dst = v
				}
			}
			setBool := func(flag string, v *bool, dst **bool) {
				if f.Changed(flag) {
					*dst = v
				}
			}
			setString("domain", &domain, &patch.Domain)
			setString("path", &path, &patch.Path)
			setString("component", &component, &patch.Component)
			setString("cert", &cert, &patch.Certificate)
			setString("rewrite", &rewrite, &patch.RewritePath)
			setInt("port", &port, &patch.Port)
			setInt("weight", &weight, &patch.Weight)
			setInt("connect-timeout", &connectTimeout, &patch.ConnectTimeout)
			setInt("read-timeout", &readTimeout, &patch.ReadTimeout)
			setInt("send-timeout", &sendTimeout, &patch.SendTimeout)
			setInt("rate-burst", &rateBurst, &patch.RateBurst)
			setBool("redirect-https", &redirectHTTPS, &patch.RedirectHTTPS)
			setBool("auto-tls", &autoTLS, &patch.AutoTLS)
			if f.Changed("rate-limit") {
				patch.RateLimit = &rateLimit
			}
			if f.Changed("max-body") {
				n, err := parseSize("--max-body", maxBody)
				if err != nil {
					return err
				}
				patch.MaxBodySize = &n
			}
			if f.Changed("header") {
				// "" is how a user says "no conditions" on a command line.
				if len(headers) == 1 && headers[0] == "" {
					headers = nil
				}
				h, err := parseHeaders(headers)
				if err != nil {
					return err
				}
				if h == nil {
					h = map[string]string{} // null would read as "leave unchanged"
				}
				patch.Headers = &h
			}
			if patch == (client.HTTPRulePatch{}) {
				return fmt.Errorf("nothing to change: give at least one flag (see \"berth rule http update --help\")")
			}
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			r, err := cl.UpdateHTTPRule(cmd.Context(), team, args[0], patch)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Updated rule %s: %s -> %s:%d.\n", r.ID, ruleURL(r), r.Component, r.Port)
			if opts := ruleOptions(r); opts != "" {
				fmt.Fprintf(c.out(), "Options: %s\n", opts)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&domain, "domain", "", "domain to match")
	f.StringVar(&path, "path", "", "path prefix")
	f.StringVar(&component, "component", "", "alias of the component to route to")
	f.IntVar(&port, "port", 0, "port of the component")
	f.IntVar(&weight, "weight", 0, "share of the traffic, 1-100")
	f.StringVar(&cert, "cert", "", `certificate name ("" for none)`)
	f.StringArrayVar(&headers, "header", nil, "only requests with header NAME=VALUE (repeatable; replaces all)")
	f.StringVar(&rewrite, "rewrite", "", `replace the matched path prefix upstream with PATH ("" for none)`)
	f.IntVar(&connectTimeout, "connect-timeout", 0, "seconds to connect to an instance (0: 5)")
	f.IntVar(&readTimeout, "read-timeout", 0, "seconds to wait for the response headers (0: 60)")
	f.IntVar(&sendTimeout, "send-timeout", 0, "seconds to send the request body (0: 60)")
	f.StringVar(&maxBody, "max-body", "", "largest request body, e.g. 10Mi (0: no limit)")
	f.Float64Var(&rateLimit, "rate-limit", 0, "requests a second (0: no limit)")
	f.IntVar(&rateBurst, "rate-burst", 0, "requests above the rate accepted in a burst (0: the rate)")
	f.BoolVar(&redirectHTTPS, "redirect-https", false, "redirect plain-HTTP requests to https")
	f.BoolVar(&autoTLS, "auto-tls", false, "get and renew a certificate over ACME")
	return cmd
}

// parseHeaders reads NAME=VALUE header conditions; nil for none.
func parseHeaders(values []string) (map[string]string, error) {
	var h map[string]string
	for _, v := range values {
		k, val, err := parseAssignment(v)
		if err != nil {
			return nil, fmt.Errorf("--header: %w", err)
		}
		if h == nil {
			h = map[string]string{}
		}
		h[k] = val
	}
	return h, nil
}

// parseSize reads a byte size the way the server reads memory limits
// (10Mi, 1G, 1048576), so a flag accepts what the API documents.
func parseSize(flag, s string) (int64, error) {
	n, err := model.ParseBytes(flag, s)
	if err != nil {
		return 0, fmt.Errorf("%s must be a size like 512Ki, 10Mi or 1G (got %q)", flag, s)
	}
	return n, nil
}

// ruleURL is where users reach a rule, as far as the rule alone says.
func ruleURL(r *client.HTTPRule) string {
	scheme := "http"
	if r.Certificate != "" || r.AutoTLS {
		scheme = "https"
	}
	return scheme + "://" + r.Domain + r.Path
}

// ruleOptions lists a rule's non-default options compactly for one table
// cell, e.g. "rewrite=/ read=30s body<=10Mi rate=5/s+10 →https".
func ruleOptions(r *client.HTTPRule) string {
	var parts []string
	if r.RewritePath != "" {
		parts = append(parts, "rewrite="+r.RewritePath)
	}
	for _, t := range []struct {
		name string
		secs int
	}{{"connect", r.ConnectTimeout}, {"read", r.ReadTimeout}, {"send", r.SendTimeout}} {
		if t.secs > 0 {
			parts = append(parts, fmt.Sprintf("%s=%ds", t.name, t.secs))
		}
	}
	if r.MaxBodySize > 0 {
		parts = append(parts, "body<="+formatSize(r.MaxBodySize))
	}
	if r.RateLimit > 0 {
		rate := "rate=" + strconv.FormatFloat(r.RateLimit, 'f', -1, 64) + "/s"
		if r.RateBurst > 0 {
			rate += fmt.Sprintf("+%d", r.RateBurst)
		}
		parts = append(parts, rate)
	} else if r.RateBurst > 0 {
		parts = append(parts, fmt.Sprintf("burst=%d", r.RateBurst))
	}
	if r.RedirectHTTPS {
		parts = append(parts, "→https")
	}
	if r.AutoTLS && r.Certificate == "" {
		parts = append(parts, "auto-tls")
	}
	return strings.Join(parts, " ")
}

// formatSize writes bytes in the largest binary unit that divides them,
// as the flags take them.
func formatSize(n int64) string {
	if s := model.FormatBytes(n); s != "" {
		return s
	}
	return "0"
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
