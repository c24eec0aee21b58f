package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newVolumeCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "volume",
		Aliases: []string{"volumes", "vol"},
		Short:   "Add, list and remove persistent volumes of a component",
	}

	var v client.Volume
	add := &cobra.Command{
		Use:     "add ALIAS PATH [--size 1Gi] [--name NAME] [--type local|memory]",
		Short:   "Mount a volume into every instance",
		Example: "  berth volume add db /var/lib/postgresql/data --size 10Gi",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v.Path = args[1]
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			added, err := cl.AddVolume(cmd.Context(), ref, v)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Added volume %s at %s to %s.\n", added.Name, added.Path, ref.Component)
			return nil
		},
	}
	add.Flags().StringVar(&v.Size, "size", "", "size limit, e.g. 1Gi (default: none)")
	add.Flags().StringVar(&v.Name, "name", "", "volume name (default: chosen by the server)")
	add.Flags().StringVar(&v.Type, "type", "", "local (default) or memory")

	var format string
	list := &cobra.Command{
		Use:     "list ALIAS",
		Aliases: []string{"ls"},
		Short:   "List the volumes of a component",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			vols, err := cl.ListVolumes(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return c.render(format, vols, func() {
				t := newTable("NAME", "PATH", "SIZE", "TYPE")
				for _, v := range vols {
					t.row(v.Name, v.Path, orDash(v.Size), orDash(v.Type))
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(list, &format)

	cmd.AddCommand(add, list, &cobra.Command{
		Use:     "remove ALIAS NAME|PATH",
		Aliases: []string{"rm"},
		Short:   "Remove a volume and its data",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			name := args[1]
			if strings.HasPrefix(name, "/") {
				// Users remember where a volume is mounted more often than
				// the name the server gave it.
				vols, err := cl.ListVolumes(cmd.Context(), ref)
				if err != nil {
					return err
				}
				name = ""
				for _, v := range vols {
					if v.Path == args[1] {
						name = v.Name
					}
				}
				if name == "" {
					return fmt.Errorf("%s has no volume at %s", ref.Component, args[1])
				}
			}
			if err := cl.RemoveVolume(cmd.Context(), ref, name); err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Removed volume %s from %s.\n", name, ref.Component)
			return nil
		},
	})
	return cmd
}
