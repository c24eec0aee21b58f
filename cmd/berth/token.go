package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newTokenCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the API tokens of a team",
	}

	var req client.TokenRequest
	var createFormat string
	create := &cobra.Command{
		Use:   "create NAME (--role ROLE | --member MEMBER)",
		Short: "Create a token; its secret is shown only once",
		Long: `Create a token for scripts and CI (--role: the token has that role) or
for a person (--member: the token acts as that member, with the member's
role). The secret is printed once; the server keeps only a hash of it.`,
		Example: `  berth token create ci --role developer
  berth token create alice-laptop --member alice`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			req.Name = args[0]
			tok, err := cl.CreateToken(cmd.Context(), team, req)
			if err != nil {
				return err
			}
			return c.render(createFormat, tok, func() {
				who := "role " + tok.Token.Role
				if tok.Token.Member != "" {
					who = "acting as " + tok.Token.Member
				}
				fmt.Fprintf(c.out(), "Created token %s (%s, %s) in team %s.\n", tok.Token.Name, tok.Token.ID, who, team)
				fmt.Fprintf(c.out(), "Secret, shown only this once:\n\n  %s\n\n", tok.Secret)
				// Pasting into stdin keeps the secret out of shell history.
				fmt.Fprintf(c.out(), "Log in with it: berth login %s --token -   (then paste the secret)\n", cl.BaseURL())
			})
		},
	}
	create.Flags().StringVar(&req.Role, "role", "", "role of the token: "+rolesHelp)
	create.Flags().StringVar(&req.Member, "member", "", "member the token acts as")
	create.MarkFlagsMutuallyExclusive("role", "member")
	create.MarkFlagsOneRequired("role", "member")
	addOutputFlag(create, &createFormat)

	var format string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the team's tokens (without secrets)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			toks, err := cl.ListTokens(cmd.Context(), team)
			if err != nil {
				return err
			}
			return c.render(format, toks, func() {
				t := newTable("ID", "NAME", "MEMBER", "ROLE", "CREATED", "LAST USED")
				for _, tok := range toks {
					used := "never"
					if tok.LastUsedAt != nil {
						used = ago(*tok.LastUsedAt)
					}
					t.row(tok.ID, tok.Name, orDash(tok.Member), orDash(tok.Role), ago(tok.CreatedAt), used)
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(list, &format)

	cmd.AddCommand(create, list, &cobra.Command{
		Use:     "revoke ID",
		Aliases: []string{"delete", "rm"},
		Short:   "Revoke a token; calls with it fail from now on",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			if err := cl.RevokeToken(cmd.Context(), team, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Revoked token %s.\n", args[0])
			return nil
		},
	})
	return cmd
}
