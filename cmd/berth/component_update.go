package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

// newComponentUpdateCmd changes a component's settings; the running
// instances pick them up on the next deploy or restart.
func newComponentUpdateCmd(c *cli) *cobra.Command {
	var image, memory, cpu string
	var src client.Source
	var instances, settle int
	var cmdWords, args []string
	cmd := &cobra.Command{
		Use:   "update ALIAS [--image IMAGE] [--memory SIZE] [--cpu CPU] [--instances N] [--cmd WORD...] [--arg WORD...] [--language LANG] [--branch B] [--subdir DIR]",
		Short: "Change a component's image, limits, instances, command or source",
		Long: `Change a component's settings. Only the flags given change (the other
fields of a source stay too: --language go keeps its URL, branch and
credentials). Running instances keep the old settings until
"berth deploy ALIAS" (a new build, for a source) or "berth restart ALIAS"
rolls them out.`,
		Example: `  berth component update web --memory 512Mi
  berth component update api --language go --subdir services/api`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			var patch client.ComponentPatch
			f := cmd.Flags()
			if f.Changed("image") {
				patch.Image = &image
			}
			if f.Changed("memory") {
				patch.Memory = &memory
			}
			if f.Changed("cpu") {
				patch.CPU = &cpu
			}
			if f.Changed("instances") {
				patch.Instances = &instances
			}
			if f.Changed("cmd") {
				patch.Cmd = &cmdWords
			}
			if f.Changed("arg") {
				patch.Args = &args
			}
			if f.Changed("settle") {
				patch.SettleSeconds = &settle
			}
			if src != (client.Source{}) {
				patch.Source = &src
			}
			if patch == (client.ComponentPatch{}) {
				return fmt.Errorf("nothing to change: give at least one of --image, --memory, --cpu, --instances, --cmd, --arg, --settle, --language, --branch, --tag, --subdir")
			}
			cl, ref, err := c.component(cmd.Context(), pos[0])
			if err != nil {
				return err
			}
			comp, err := cl.UpdateComponent(cmd.Context(), ref, patch)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Updated component %s. Roll it out with \"berth deploy %s\" or \"berth restart %s\".\n", comp.Alias, comp.Alias, comp.Alias)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&image, "image", "", "image reference")
	f.StringVar(&memory, "memory", "", "memory limit, e.g. 512Mi (0 for none)")
	f.StringVar(&cpu, "cpu", "", "CPU limit, e.g. 500m or 2 (0 for none)")
	f.IntVar(&instances, "instances", 1, "number of instances")
	f.StringArrayVar(&cmdWords, "cmd", nil, "command, one word per flag (replaces the image's entrypoint)")
	f.StringArrayVar(&args, "arg", nil, "argument, one word per flag (replaces the image's CMD)")
	f.IntVar(&settle, "settle", 10, "seconds new instances must stay ready, without a restart, before a deploy succeeds")
	f.StringVar(&src.Language, "language", "", "build with berth's plan for this language instead of detecting it (go, node, python, java, php, static, dockerfile...)")
	f.StringVar(&src.Branch, "branch", "", "git branch to build")
	f.StringVar(&src.Tag, "tag", "", "git tag to build")
	f.StringVar(&src.Subdir, "subdir", "", "directory of the repository to build")
	return cmd
}
