package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newGatewayCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "See what the gateway answered instead of your components",
	}
	var format string
	errorsCmd := &cobra.Command{
		Use:   "errors ALIAS",
		Short: "List the recent requests the gateway answered itself for a component",
		Long: `List the last requests (or TCP connections) the gateway could not pass to
the component, newest first, with the cause: no ready instance, connection
refused, upstream timeout, rate limited, request body too large... The
request id is the X-Request-Id the user got, to find the request in logs.`,
		Example: "  berth gateway errors web",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			errs, err := cl.GatewayErrors(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return c.render(format, errs, func() {
				if len(errs) == 0 {
					fmt.Fprintf(c.out(), "No gateway errors for %s.\n", ref.Component)
					return
				}
				gatewayErrorTable(c, errs)
			})
		},
	}
	addOutputFlag(errorsCmd, &format)
	cmd.AddCommand(errorsCmd)
	return cmd
}

func gatewayErrorTable(c *cli, errs []client.GatewayError) {
	t := newTable("TIME", "STATUS", "CAUSE", "REQUEST", "REQUEST ID")
	for _, e := range errs {
		status := "tcp"
		if e.Status != 0 {
			status = strconv.Itoa(e.Status)
		}
		request := e.Host + e.Path
		if e.Method != "" {
			request = e.Method + " " + request
		}
		t.row(clock(e.Time), cell{status, gatewayErrorColor(e.Status)}, e.Cause, request, orDash(e.RequestID))
		if e.Upstream != "" {
			t.note("upstream " + e.Upstream)
		}
	}
	t.write(c)
}

// gatewayErrorColor: server-side failures (the component is down or slow)
// need attention, refusals by a limit the team set are a warning.
func gatewayErrorColor(status int) string {
	if status >= 400 && status < 500 {
		return colorYellow
	}
	return colorRed
}

// clock writes a recent time as the time of day, an older one with its
// date.
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	local := t.Local()
	if time.Since(t) < 12*time.Hour {
		return local.Format("15:04:05")
	}
	return local.Format("2006-01-02 15:04:05")
}
