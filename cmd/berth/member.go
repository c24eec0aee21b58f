package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

const rolesHelp = "owner, admin, developer or viewer"

func newMemberCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "Manage the members of a team",
	}
	var role string
	add := &cobra.Command{
		Use:   "add NAME [--role ROLE]",
		Short: "Add a member to the team",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			m, err := cl.AddMember(cmd.Context(), team, args[0], role)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Added %s to team %s as %s. Give them a token with \"berth token create NAME --member %s\".\n",
				m.Name, team, m.Role, m.Name)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", client.RoleDeveloper, "role: "+rolesHelp)

	var format string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the members of the team",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			members, err := cl.ListMembers(cmd.Context(), team)
			if err != nil {
				return err
			}
			return c.render(format, members, func() {
				t := newTable("NAME", "ROLE", "ADDED")
				for _, m := range members {
					t.row(m.Name, m.Role, ago(m.CreatedAt))
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(list, &format)

	cmd.AddCommand(add, list,
		&cobra.Command{
			Use:   "set-role NAME ROLE",
			Short: "Change the role of a member (" + rolesHelp + ")",
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, team, err := c.session(cmd.Context())
				if err != nil {
					return err
				}
				m, err := cl.SetMemberRole(cmd.Context(), team, args[0], args[1])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.out(), "%s is now %s of team %s.\n", m.Name, m.Role, team)
				return nil
			},
		},
		&cobra.Command{
			Use:     "remove NAME",
			Aliases: []string{"rm"},
			Short:   "Remove a member and revoke the member's tokens",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, team, err := c.session(cmd.Context())
				if err != nil {
					return err
				}
				if err := cl.RemoveMember(cmd.Context(), team, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(c.out(), "Removed %s from team %s.\n", args[0], team)
				return nil
			},
		},
	)
	return cmd
}
