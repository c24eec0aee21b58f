package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newVersionsCmd(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "versions ALIAS",
		Short: "List the versions (builds) of a component, newest first",
		Long: `List the versions of a component; the one deployed is marked with "*".
Go back to one with "berth rollback ALIAS VERSION".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			comp, err := cl.GetComponent(cmd.Context(), ref)
			if err != nil {
				return err
			}
			versions, err := cl.ListVersions(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return c.render(format, versions, func() {
				t := newTable("", "VERSION", "STATUS", "IMAGE", "COMMIT", "BUILD", "CREATED", "EVENT")
				for _, v := range versions {
					mark := ""
					if v.Number == comp.DeployVersion {
						mark = "*"
					}
					commit := v.Commit
					if len(commit) > 12 {
						commit = commit[:12]
					}
					build := ""
					if v.DurationMS > 0 {
						build = shortDuration(time.Duration(v.DurationMS) * time.Millisecond)
					}
					t.row(mark, fmt.Sprint(v.Number), cell{v.Status, versionColors[v.Status]}, v.Image,
						orDash(commit), orDash(build), ago(v.CreatedAt), orDash(v.EventID))
				}
				t.write(c)
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}
