// Command berth is the berth platform's command line: it runs the server
// (berth server) and drives it through the REST API (every other command).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
	"github.com/berth-platform/berth/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c := &cli{
		stdin:  os.Stdin,
		getenv: os.Getenv,
		tty:    isatty.IsTerminal(os.Stdout.Fd()) || isatty.IsCygwinTerminal(os.Stdout.Fd()),
		term:   openTerminal(),
	}
	code := execute(ctx, c, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execute runs one command line and returns the process exit code. Tests
// call it in-process with their own writers.
func execute(ctx context.Context, c *cli, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(c)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetIn(c.stdin)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *exitError
	if errors.As(err, &exit) {
		return exit.code
	}
	printError(stderr, err, c.getenv)
	return 1
}

// exitError ends a command with an exit status and no message: the exit
// code of a remote command, or 130 after an interrupt.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// errInterrupted is how a command stopped by Ctrl-C ends, as a shell
// reports a process killed by SIGINT.
var errInterrupted = &exitError{code: 130}

// printError writes an error the way every command reports one, with a
// hint where the fix is always the same.
func printError(w io.Writer, err error, getenv func(string) string) {
	var phaseErr *server.PhaseError
	if errors.As(err, &phaseErr) {
		// The server's start-up line is complete as it is (seed guide style).
		fmt.Fprintln(w, phaseErr.Error())
		return
	}
	fmt.Fprintf(w, "Error: %s\n", err)
	var apiErr *client.Error
	if errors.As(err, &apiErr) && apiErr.Status == 401 {
		if getenv("BERTH_TOKEN") != "" {
			// A new login would not help: the variable wins over it.
			fmt.Fprintln(w, "Hint: the token was refused; BERTH_TOKEN is set, check its value or unset it.")
		} else {
			fmt.Fprintln(w, `Hint: the token was refused; run "berth login URL --token TOKEN" with a valid token.`)
		}
	}
}

func newRootCmd(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "Deploy and run applications on berth",
		Long: `berth deploys and runs applications: teams own apps, apps group components
(an image, source code or an external service), and every operation is an
event whose log you can follow.

Start with "berth login URL --token TOKEN", pick a team and app with
"berth use TEAM/APP", then "berth component create" and "berth deploy".`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	c.root = root
	root.PersistentFlags().StringVarP(&c.teamFlag, "team", "t", "", "team to act in (default $BERTH_TEAM, then \"berth use\")")
	root.PersistentFlags().StringVarP(&c.appFlag, "app", "a", "", "app to act in (default $BERTH_APP, then \"berth use\")")

	root.AddGroup(
		&cobra.Group{ID: "setup", Title: "Setup:"},
		&cobra.Group{ID: "manage", Title: "Teams and apps:"},
		&cobra.Group{ID: "component", Title: "Components:"},
		&cobra.Group{ID: "operate", Title: "Operations:"},
		&cobra.Group{ID: "gateway", Title: "Gateway:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, cmd := range cmds {
			cmd.GroupID = group
			root.AddCommand(cmd)
		}
	}
	add("setup", newLoginCmd(c), newWhoamiCmd(c), newUseCmd(c), newServerCmd())
	add("manage", newTeamCmd(c), newMemberCmd(c), newTokenCmd(c), newAppCmd(c), newTopologyCmd(c))
	add("component", newComponentCmd(c), newPsCmd(c), newEnvCmd(c), newPortCmd(c),
		newDependencyCmd(c), newVolumeCmd(c), newVersionsCmd(c), newInstancesCmd(c), newEndpointsCmd(c))
	add("operate", newActionCmds(c)...)
	add("operate", newBuildCmd(c), newCancelCmd(c), newImagesCmd(c))
	add("operate", newEventsCmd(c), newLogsCmd(c), newExecCmd(c))
	add("gateway", newRuleCmd(c), newCertCmd(c), newGatewayCmd(c))
	refuseUnknownSubcommands(root)
	return root
}
