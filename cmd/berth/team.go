package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newTeamCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "team",
		Short: "Create, list and delete teams",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "create NAME",
			Short: "Create a team (admin token only)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := c.client()
				if err != nil {
					return err
				}
				t, err := cl.CreateTeam(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(c.out(), "Created team %s. Add members with \"berth member add NAME --team %s\".\n", t.Name, t.Name)
				return nil
			},
		},
		newTeamListCmd(c),
		newTeamDeleteCmd(c),
	)
	return cmd
}

func newTeamDeleteCmd(c *cli) *cobra.Command {
	var yes, detach bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a team with all its apps, components, members and tokens",
		Long: `Delete a team with all its apps, components, members and tokens. On a
terminal it asks for the team's name first; scripts pass --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.confirmDestruction("team", args[0], yes); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			id, err := cl.DeleteTeam(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			err = c.followEvent(cmd.Context(), cl, id, detach)
			var apiErr *client.Error
			if errors.As(err, &apiErr) && apiErr.Status == 401 {
				// A team token dies with its team: the delete went through.
				fmt.Fprintf(c.out(), "Deleted team %s; its tokens went with it (follow event %s with the admin token to read the rest).\n", args[0], id)
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "print the event id and return without following the log")
	return cmd
}

func newTeamListCmd(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the teams you can see",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			teams, err := cl.ListTeams(cmd.Context())
			if err != nil {
				return err
			}
			return c.render(format, teams, func() {
				t := newTable("NAME", "CREATED")
				for _, team := range teams {
					t.row(team.Name, ago(team.CreatedAt))
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}
