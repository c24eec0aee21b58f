package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

// action is an operation on a component that the server runs in the
// background; the command follows its event.
type action struct {
	use, short, long, example string
	args                      int // beyond ALIAS
	run                       func(ctx context.Context, cl *client.Client, ref client.ComponentRef, args []string) (string, error)
	flags                     func(cmd *cobra.Command)
}

func newActionCmds(c *cli) []*cobra.Command {
	var image string
	actions := []action{
		{
			use:   "deploy ALIAS [--image IMAGE]",
			short: "Build (for source components) and roll out a component",
			long: `Deploy a component: build a new version from its source, or take its image
(--image changes it first), then roll it out.`,
			example: "  berth deploy web --image nginx:1.27",
			run: func(ctx context.Context, cl *client.Client, ref client.ComponentRef, _ []string) (string, error) {
				return cl.Deploy(ctx, ref, image)
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().StringVar(&image, "image", "", "deploy this image (image components)")
			},
		},
		{
			use: "start ALIAS", short: "Start a stopped component",
			run: func(ctx context.Context, cl *client.Client, ref client.ComponentRef, _ []string) (string, error) {
				return cl.Start(ctx, ref)
			},
		},
		{
			use: "stop ALIAS", short: "Stop every instance of a component",
			run: func(ctx context.Context, cl *client.Client, ref client.ComponentRef, _ []string) (string, error) {
				return cl.Stop(ctx, ref)
			},
		},
		{
			use: "restart ALIAS", short: "Replace every instance of a component",
			run: func(ctx context.Context, cl *client.Client, ref client.ComponentRef, _ []string) (string, error) {
				return cl.Restart(ctx, ref)
			},
		},
		{
			use: "scale ALIAS INSTANCES", short: "Change the number of instances", args: 1,
			example: "  berth scale web 3",
			run: func(ctx context.Context, cl *client.Client, ref client.ComponentRef, args []string) (string, error) {
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 0 {
					return "", fmt.Errorf("%q is not a number of instances", args[0])
				}
				return cl.Scale(ctx, ref, n)
			},
		},
		{
			use: "rollback ALIAS VERSION", short: "Deploy an earlier version again", args: 1,
			long:    `Deploy an earlier version again; list them with "berth versions ALIAS".`,
			example: "  berth rollback web 3",
			run: func(ctx context.Context, cl *client.Client, ref client.ComponentRef, args []string) (string, error) {
				n, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || n < 1 {
					return "", fmt.Errorf("%q is not a version number; list them with \"berth versions %s\"", args[0], ref.Component)
				}
				return cl.Rollback(ctx, ref, n)
			},
		},
	}
	cmds := make([]*cobra.Command, len(actions))
	for i, a := range actions {
		cmds[i] = newActionCmd(c, a)
	}
	return cmds
}

func newActionCmd(c *cli, a action) *cobra.Command {
	var detach bool
	long := a.long
	if long == "" {
		long = a.short + "."
	}
	cmd := &cobra.Command{
		Use:   a.use,
		Short: a.short,
		Long: long + `

The command prints the id of the operation's event and follows its log until
it ends, exiting with status 1 if it failed. With --detach it prints only the
event id and returns at once.`,
		Example: a.example,
		Args:    cobra.ExactArgs(1 + a.args),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, ref, err := c.component(ctx, args[0])
			if err != nil {
				return err
			}
			id, err := a.run(ctx, cl, ref, args[1:])
			if err != nil {
				return err
			}
			return c.followEvent(ctx, cl, id, detach)
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "print the event id and return without following the log")
	if a.flags != nil {
		a.flags(cmd)
	}
	return cmd
}

// followEvent reports an operation the server accepted: its event id
// alone with detach, else the event's log until it ends, failing when the
// operation failed.
func (c *cli) followEvent(ctx context.Context, cl *client.Client, id string, detach bool) error {
	if detach {
		// Only the id on stdout, so that scripts can capture it.
		fmt.Fprintln(c.out(), id)
		fmt.Fprintf(c.err(), "Follow it with \"berth logs -f %s\".\n", id)
		return nil
	}
	fmt.Fprintf(c.out(), "Event %s\n", id)
	p := newLogPrinter(c)
	ev, err := p.follow(ctx, cl, id)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted; the operation goes on, follow it with \"berth logs -f %s\"", id)
	}
	if err != nil {
		return fmt.Errorf("%w (the operation goes on; follow it with \"berth logs -f %s\")", err, id)
	}
	return p.result(ev)
}
