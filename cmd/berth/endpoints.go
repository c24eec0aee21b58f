package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newEndpointsCmd(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "endpoints ALIAS",
		Aliases: []string{"endpoint", "ep"},
		Short:   "List a thirdparty component's endpoints with their health",
		Long: `List the addresses of a thirdparty component (a service berth does not run)
with the health berth checks them with: the static ones given with
"berth component create --endpoint", and those the service registered itself
with "berth endpoints register".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			eps, err := cl.ListEndpoints(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return c.render(format, eps, func() { endpointTable(c, ref.Component, eps) })
		},
	}
	addOutputFlag(cmd, &format)
	cmd.AddCommand(newEndpointsRegisterCmd(c))
	return cmd
}

func endpointTable(c *cli, alias string, eps *client.Endpoints) {
	if len(eps.Static)+len(eps.Registered)+len(eps.Items) == 0 {
		fmt.Fprintf(c.out(), "%s has no endpoints; its service registers them with \"berth endpoints register\".\n", alias)
		return
	}
	health := map[string]client.Instance{}
	for _, in := range eps.Items {
		health[endpointAddress(in)] = in
	}
	t := newTable("ENDPOINT", "SOURCE", "STATUS", "MESSAGE")
	seen := map[string]bool{}
	row := func(addr, source string) {
		seen[addr] = true
		in, ok := health[addr]
		if !ok {
			t.row(addr, source, cell{"unchecked", colorGrey}, "-")
			return
		}
		msg := in.Message
		if in.Reason != "" && msg != "" {
			msg = in.Reason + ": " + msg
		} else if msg == "" {
			msg = in.Reason
		}
		t.row(addr, source, cell{in.Status, instanceColors[in.Status]}, orDash(msg))
		if in.Advice != "" {
			t.note("advice: " + in.Advice)
		}
	}
	for _, a := range eps.Static {
		row(a, "static")
	}
	for _, a := range eps.Registered {
		if !seen[a] {
			row(a, "registered")
		}
	}
	for _, in := range eps.Items {
		if a := endpointAddress(in); !seen[a] {
			row(a, "-")
		}
	}
	t.write(c)
}

// endpointAddress is the endpoint an Instance of an endpoint list stands
// for: its address, which is also its id.
func endpointAddress(in client.Instance) string {
	if in.Address != "" {
		return in.Address
	}
	return in.ID
}

func newEndpointsRegisterCmd(c *cli) *cobra.Command {
	var key string
	var clearAll bool
	cmd := &cobra.Command{
		Use:   "register URL TEAM/APP/ALIAS --key KEY HOST:PORT...",
		Short: "Register a service's own addresses (run by the service; no login needed)",
		Long: `Replace the endpoints a thirdparty service registered for itself with
HOST:PORT...; the static endpoints stay. URL is the berth server, KEY the
component's endpoint key ("berth component get ALIAS" shows it). The key
is all the command needs: a service can run it at start-up without a berth
login. --key defaults to $BERTH_ENDPOINT_KEY, which keeps the key out of
the process list. --clear removes the registered endpoints, e.g. when the
service shuts down.`,
		Example: `  berth endpoints register https://berth.example.com acme/shop/payments --key "$KEY" 10.0.0.7:8443
  BERTH_ENDPOINT_KEY=bek_... berth endpoints register http://10.0.0.1:7070 acme/shop/payments --clear`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := strings.TrimRight(args[0], "/")
			if u, err := url.Parse(server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%q is not a server URL: use http://HOST:PORT or https://HOST", args[0])
			}
			parts := strings.Split(args[1], "/")
			if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
				return fmt.Errorf("%q is not TEAM/APP/ALIAS", args[1])
			}
			ref := client.ComponentRef{Team: parts[0], App: parts[1], Component: parts[2]}
			endpoints := args[2:]
			switch {
			case clearAll && len(endpoints) > 0:
				return errors.New("give either HOST:PORT addresses or --clear, not both")
			case !clearAll && len(endpoints) == 0:
				return errors.New("give the HOST:PORT addresses to register, or --clear to remove the registered ones")
			}
			if key == "" {
				key = c.getenv("BERTH_ENDPOINT_KEY")
			}
			if key == "" {
				return errors.New(`the endpoint key is required: pass --key KEY or set BERTH_ENDPOINT_KEY ("berth component get ALIAS" shows it)`)
			}
			registered, err := c.newClient(server, "").RegisterEndpoints(cmd.Context(), ref, key, endpoints)
			var apiErr *client.Error
			if errors.As(err, &apiErr) && apiErr.Status == 401 {
				// Not the login hint: no token is involved.
				return fmt.Errorf("%s refused the endpoint key for %s: %s", server, ref, apiErr.Message)
			}
			if err != nil {
				return err
			}
			if len(registered) == 0 {
				fmt.Fprintf(c.out(), "Removed the registered endpoints of %s.\n", ref)
				return nil
			}
			fmt.Fprintf(c.out(), "Registered %s for %s.\n", strings.Join(registered, ", "), ref)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the component's endpoint key (default $BERTH_ENDPOINT_KEY)")
	cmd.Flags().BoolVar(&clearAll, "clear", false, "remove the registered endpoints")
	return cmd
}
