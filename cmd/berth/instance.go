package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newInstancesCmd(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "instances ALIAS",
		Aliases: []string{"instance", "inst"},
		Short:   "List the instances of a component with their status",
		Long: `List the running copies of a component: status, reason, restarts, address
and version, with the message and advice of every instance that is not
running. Use the ids with "berth logs ALIAS --instance ID" and
"berth exec ALIAS --instance ID".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			instances, err := cl.ListInstances(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return c.render(format, instances, func() {
				if len(instances) == 0 {
					noInstances(cmd.Context(), c, cl, ref)
					return
				}
				instanceTable(c, instances)
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

// noInstances says why a component has no instance: a waiting one waits
// for its dependencies (its status message names them), others were not
// deployed and started.
func noInstances(ctx context.Context, c *cli, cl *client.Client, ref client.ComponentRef) {
	if comp, err := cl.GetComponent(ctx, ref); err == nil && comp.Status == "waiting" {
		fmt.Fprintf(c.out(), "No instances of %s yet: it is %s; it starts by itself once they are ready.\n", ref.Component,
			strings.TrimSuffix(orDash(comp.StatusMessage), "; it starts by itself once they are"))
		return
	}
	fmt.Fprintf(c.out(), "No instances of %s; it runs once deployed and started (\"berth deploy %s\").\n",
		ref.Component, ref.Component)
}

func instanceTable(c *cli, instances []client.Instance) {
	t := newTable("ID", "STATUS", "REASON", "RESTARTS", "ADDRESS", "VERSION")
	for _, in := range instances {
		version := "-"
		if in.Version > 0 {
			version = strconv.FormatInt(in.Version, 10)
		}
		t.row(in.ID, cell{in.Status, instanceColors[in.Status]}, orDash(in.Reason),
			strconv.Itoa(in.Restarts), orDash(in.Address), version)
		if in.Status == "running" {
			continue // its message only says so
		}
		// A crash's message ends with the last lines of its output.
		if msg := strings.TrimRight(in.Message, "\n"); msg != "" {
			t.note(strings.Split(msg, "\n")...)
		}
		if in.Advice != "" {
			t.note(strings.Split("advice: "+strings.TrimRight(in.Advice, "\n"), "\n")...)
		}
	}
	t.write(c)
}

// defaultLogsFollowTail is how much history "berth logs -f ALIAS" shows
// before the new lines: enough for context, not a long-running service's
// whole log.
const defaultLogsFollowTail = 100

// componentLogs prints the container output of a component.
func (c *cli) componentLogs(cmd *cobra.Command, alias string, opts client.LogsOptions, tail int) error {
	ctx := cmd.Context()
	switch {
	case !cmd.Flags().Changed("tail"):
		if opts.Follow {
			opts.Tail = defaultLogsFollowTail
		}
	case tail > 0:
		opts.Tail = tail
	case tail == -1:
		opts.Tail = 0 // the API's "every line kept"
	default:
		return fmt.Errorf("--tail must be a number of lines, or -1 for every line kept (got %d)", tail)
	}
	cl, ref, err := c.component(ctx, alias)
	if err != nil {
		return err
	}
	rc, err := cl.ComponentLogs(ctx, ref, opts)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(c.out(), rc); err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return fmt.Errorf("log stream of %s broke off: %w", ref.Component, err)
	}
	return nil
}

func newExecCmd(c *cli) *cobra.Command {
	var (
		instance       string
		stdin, withTTY bool
	)
	cmd := &cobra.Command{
		Use:   "exec ALIAS [--instance ID] [-i] [-t] [-- CMD [ARGS...]]",
		Short: "Run a command, by default a shell, in an instance of a component",
		Long: `Run a command in a running instance of a component: by default /bin/sh,
else the command given after "--". Without --instance the first running
instance is used (named on stderr; list them with "berth instances ALIAS").

-t gives the command a terminal: the local one is switched to raw mode
(every key, Ctrl-C included, goes to the command) and its size follows the
window; it is the default when stdin and stdout are terminals, turn it off
with -t=false. -i sends stdin to the command; it is implied by a terminal.
Without a terminal, the output is stdout and stderr together.

berth exits with the command's exit code. Here -t means --tty: give the
team with --team.

The server cannot pass the end of stdin on, so a command that reads its
input to the end (cat, sh < script) does not finish by itself.`,
		Example: `  berth exec web
  berth exec web -- ls -l /usr/share/nginx/html
  berth exec db --instance db-7f9c2 -- psql -U postgres -c 'select 1'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			command := []string{"/bin/sh"}
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				if dash != 1 {
					return fmt.Errorf("give one ALIAS before \"--\", got %q", args[:dash])
				}
				if len(args) > 1 {
					command = args[1:]
				}
			} else if len(args) > 1 {
				return fmt.Errorf("unexpected arguments %q: put the command to run after \"--\", e.g. berth exec %s -- %s",
					args[1:], args[0], strings.Join(args[1:], " "))
			}
			ctx := cmd.Context()

			useTTY := c.term != nil && c.tty
			if cmd.Flags().Changed("tty") {
				useTTY = withTTY
				if withTTY && c.term == nil {
					fmt.Fprintln(c.err(), "stdin is not a terminal; running without a TTY")
					useTTY = false
				}
			}

			cl, ref, err := c.component(ctx, args[0])
			if err != nil {
				return err
			}
			if instance == "" {
				if instance, err = pickInstance(ctx, cl, ref); err != nil {
					return err
				}
				fmt.Fprintf(c.err(), "Running in instance %s of %s (choose with --instance).\n", instance, ref.Component)
			}

			opts := client.ExecOptions{Cmd: command, TTY: useTTY, Stdout: c.out()}
			if stdin || useTTY {
				opts.Stdin = c.stdin
			}
			if useTTY {
				resizeCtx, stopResize := context.WithCancel(ctx)
				defer stopResize()
				opts.Resize = followSize(resizeCtx, c.term)
				restore, err := c.term.MakeRaw()
				if err != nil {
					return fmt.Errorf("cannot switch the terminal to raw mode: %w", err)
				}
				defer restore()
			}
			code, err := cl.Exec(ctx, ref, instance, opts)
			if err != nil {
				if ctx.Err() != nil {
					return errInterrupted
				}
				return err
			}
			if code < 0 || code > 255 {
				code = 255 // an exit status is one byte; 256 would read as success
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&instance, "instance", "", "instance to run in (default: the first running one)")
	f.BoolVarP(&stdin, "stdin", "i", false, "send stdin to the command (implied by -t)")
	f.BoolVarP(&withTTY, "tty", "t", false, "give the command a terminal (default when stdin and stdout are terminals)")
	// -t is --tty as in docker and kubectl; it would clash with the global
	// -t of --team, which this local flag of the same name hides.
	f.StringVar(&c.teamFlag, "team", "", "team to act in (default $BERTH_TEAM, then \"berth use\")")
	return cmd
}

// pickInstance chooses the instance exec runs in when none was named: the
// first running one.
func pickInstance(ctx context.Context, cl *client.Client, ref client.ComponentRef) (string, error) {
	instances, err := cl.ListInstances(ctx, ref)
	if err != nil {
		return "", err
	}
	if len(instances) == 0 {
		return "", fmt.Errorf("component %s has no instances; deploy or start it first", ref.Component)
	}
	var states []string
	for _, in := range instances {
		if in.Status == "running" {
			return in.ID, nil
		}
		state := in.ID + " " + in.Status
		if in.Reason != "" {
			state += " (" + in.Reason + ")"
		}
		states = append(states, state)
	}
	return "", fmt.Errorf("no instance of %s is running: %s; name one with --instance to try anyway",
		ref.Component, strings.Join(states, ", "))
}

// followSize sends the terminal's size at once and after each change,
// until ctx ends. Only the latest size matters, so a stale one waiting in
// the channel is replaced.
func followSize(ctx context.Context, t terminal) <-chan client.TerminalSize {
	sizes := make(chan client.TerminalSize, 1)
	send := func() {
		size, err := t.Size()
		if err != nil || size.Cols == 0 || size.Rows == 0 {
			return
		}
		for {
			select {
			case sizes <- size:
				return
			default:
			}
			select {
			case <-sizes:
			default:
			}
		}
	}
	send()
	resized := t.Resized(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-resized:
				send()
			}
		}
	}()
	return sizes
}

// errNotEventFlag names a component-logs flag given with an event id.
func errNotEventFlag(flag, id string) error {
	return errors.New("--" + flag + " is for the logs of a component; " + id + " is an event")
}
