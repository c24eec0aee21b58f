package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDependencyCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "dep",
		Aliases: []string{"dependency", "dependencies", "deps"},
		Short:   "Add, list and remove dependencies between components",
		Long: `A component that depends on another gets its address and outer variables
in its environment, and waits for it to be ready before it starts. The
dependency may be in another app of the same team.`,
	}

	var format string
	list := &cobra.Command{
		Use:     "list ALIAS",
		Aliases: []string{"ls"},
		Short:   "List what a component depends on",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			deps, err := cl.ListDependencies(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return c.render(format, deps, func() {
				t := newTable("ALIAS", "APP", "STATUS")
				for _, d := range deps {
					t.row(d.Alias, d.App, cell{d.Status, componentColors[d.Status]})
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(list, &format)

	cmd.AddCommand(&cobra.Command{
		Use:     "add ALIAS DEPENDENCY...",
		Short:   "Make a component depend on others",
		Example: "  berth dep add web db cache",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, dep := range args[1:] {
				if err := cl.AddDependency(cmd.Context(), ref, dep); err != nil {
					return fmt.Errorf("add dependency on %s: %w", dep, err)
				}
				fmt.Fprintf(c.out(), "%s now depends on %s.\n", ref.Component, dep)
			}
			return nil
		},
	}, list, &cobra.Command{
		Use:     "remove ALIAS DEPENDENCY...",
		Aliases: []string{"rm"},
		Short:   "Remove dependencies",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, dep := range args[1:] {
				if err := cl.RemoveDependency(cmd.Context(), ref, dep); err != nil {
					return fmt.Errorf("remove dependency on %s: %w", dep, err)
				}
				fmt.Fprintf(c.out(), "%s no longer depends on %s.\n", ref.Component, dep)
			}
			return nil
		},
	})
	return cmd
}
