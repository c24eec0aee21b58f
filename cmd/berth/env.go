package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

// parseAssignment reads KEY=VALUE; the value may contain "=" and be empty.
func parseAssignment(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return "", "", fmt.Errorf("%q is not KEY=VALUE", s)
	}
	return key, value, nil
}

func newEnvCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Set, list and unset environment variables of a component",
		Long: `Variables have a scope: inner variables are seen by the component itself,
outer ones by the components that depend on it (connection info such as a
database password), both by both. Changes apply at the next deploy or restart.`,
	}

	var scope string
	var secret bool
	set := &cobra.Command{
		Use:   "set ALIAS KEY=VALUE... [--scope inner|outer|both] [--secret]",
		Short: "Set variables, replacing those of the same name",
		Example: `  berth env set web LOG_LEVEL=debug
  berth env set db POSTGRES_PASSWORD=s3cret --scope both --secret`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var envs []client.Env
			for _, a := range args[1:] {
				k, v, err := parseAssignment(a)
				if err != nil {
					return err
				}
				envs = append(envs, client.Env{Name: k, Value: v, Scope: scope, Secret: secret})
			}
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, e := range envs {
				if _, err := cl.SetEnv(cmd.Context(), ref, e); err != nil {
					return fmt.Errorf("set %s: %w", e.Name, err)
				}
				fmt.Fprintf(c.out(), "Set %s on %s.\n", e.Name, ref.Component)
			}
			return nil
		},
	}
	set.Flags().StringVar(&scope, "scope", client.ScopeInner, "who sees the variables: inner, outer or both")
	set.Flags().BoolVar(&secret, "secret", false, "hide the values in every answer from now on")

	var format string
	var effective bool
	list := &cobra.Command{
		Use:     "list ALIAS [--effective]",
		Aliases: []string{"ls"},
		Short:   "List the variables of a component (secret values are masked)",
		Long: `List the variables set on a component. --effective lists what its
container sees at the next start instead: its own variables over the
connection info of what it depends on (<ALIAS>_HOST, <ALIAS>_PORT and their
outer variables), ${NAME} references expanded, each with where it comes from.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if effective {
				list, err := cl.EffectiveEnvs(cmd.Context(), ref)
				if err != nil {
					return err
				}
				return c.render(format, list, func() {
					if len(list.Items) == 0 {
						fmt.Fprintf(c.out(), "%s gets no variables.\n", ref.Component)
					} else {
						t := newTable("NAME", "VALUE", "ORIGIN")
						for _, e := range list.Items {
							t.row(e.Name, e.Value, e.Origin)
						}
						t.write(c)
					}
					if list.RestartPending != "" {
						c.restartPending(ref.Component, list.RestartPending)
					}
				})
			}
			envs, err := cl.ListEnvs(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return c.render(format, envs, func() {
				t := newTable("NAME", "VALUE", "SCOPE", "SECRET")
				for _, e := range envs {
					t.row(e.Name, e.Value, orDash(e.Scope), yesNo(e.Secret))
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(list, &format)
	list.Flags().BoolVar(&effective, "effective", false, "what the container sees: own variables and dependencies' connection info, with origins")

	cmd.AddCommand(set, list, &cobra.Command{
		Use:     "unset ALIAS NAME...",
		Aliases: []string{"rm"},
		Short:   "Remove variables",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, name := range args[1:] {
				if err := cl.UnsetEnv(cmd.Context(), ref, name); err != nil {
					return fmt.Errorf("unset %s: %w", name, err)
				}
				fmt.Fprintf(c.out(), "Unset %s on %s.\n", name, ref.Component)
			}
			return nil
		},
	})
	return cmd
}
