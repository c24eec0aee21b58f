package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newAppCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Create, list, get and delete apps",
	}

	var labels []string
	create := &cobra.Command{
		Use:   "create NAME [--label KEY=VALUE ...]",
		Short: "Create an app in the team",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := client.AppSpec{Name: args[0]}
			for _, l := range labels {
				k, v, err := parseAssignment(l)
				if err != nil {
					return fmt.Errorf("--label: %w", err)
				}
				if spec.Labels == nil {
					spec.Labels = map[string]string{}
				}
				spec.Labels[k] = v
			}
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			app, err := cl.CreateApp(cmd.Context(), team, spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Created app %s in team %s. Make it the default with \"berth use %s/%s\".\n",
				app.Name, team, team, app.Name)
			return nil
		},
	}
	create.Flags().StringArrayVar(&labels, "label", nil, "label KEY=VALUE (repeatable)")

	cmd.AddCommand(create, newAppListCmd(c), newAppGetCmd(c),
		newAppActionCmd(c, "start", "Start every deployed component of an app in dependency order",
			`Start every deployed component of an app: each starts once what it
depends on is ready (it waits until then), so a database comes up before the
service that uses it.`),
		newAppActionCmd(c, "stop", "Stop every component of an app, dependents first",
			`Stop every component of an app in reverse dependency order: a service
stops before the database it uses.`),
		newAppDeleteCmd(c))
	return cmd
}

func newAppDeleteCmd(c *cli) *cobra.Command {
	var opts client.DeleteOptions
	var detach bool
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete an app with all its components",
		Long: `Delete an app with all its components (each as "berth component delete"
does). While components of other apps depend on the app's, the delete is
refused unless --force.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			id, err := cl.DeleteApp(cmd.Context(), team, args[0], opts)
			if err != nil {
				return err
			}
			return c.followEvent(cmd.Context(), cl, id, detach)
		},
	}
	cmd.Flags().BoolVar(&opts.KeepVolumes, "keep-volumes", false, "keep the components' volumes")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "delete although components of other apps depend on this app's")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "print the event id and return without following the log")
	return cmd
}

func newAppListCmd(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the apps of the team",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			apps, err := cl.ListApps(cmd.Context(), team)
			if err != nil {
				return err
			}
			return c.render(format, apps, func() {
				t := newTable("NAME", "LABELS", "CREATED")
				for _, a := range apps {
					t.row(a.Name, orDash(formatLabels(a.Labels)), ago(a.CreatedAt))
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func newAppGetCmd(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:        "get NAME",
		SuggestFor: []string{"show", "describe", "view"},
		Short:      "Show an app and its components",
		Args:       cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			app, err := cl.GetApp(cmd.Context(), team, args[0])
			if err != nil {
				return err
			}
			comps, err := cl.ListComponents(cmd.Context(), team, app.Name)
			if err != nil {
				return err
			}
			view := struct {
				*client.App
				Components []client.Component `json:"components"`
			}{app, comps}
			return c.render(format, view, func() {
				c.field("App", app.Name)
				c.field("Team", app.Team)
				c.field("Labels", formatLabels(app.Labels))
				c.field("Created", timestamp(app.CreatedAt))
				fmt.Fprintln(c.out())
				if len(comps) == 0 {
					fmt.Fprintln(c.out(), `No components yet; add one with "berth component create ALIAS --image IMAGE".`)
					return
				}
				componentTable(c, comps, false)
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

// formatLabels writes labels sorted, so the output is stable.
func formatLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}
