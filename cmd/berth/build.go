package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newBuildCmd(c *cli) *cobra.Command {
	var upload string
	var detach bool
	cmd := &cobra.Command{
		Use:   "build ALIAS [--upload FILE]",
		Short: "Build a source component into a new version and roll it out",
		Long: `Build a source component: clone its repository (or take the uploaded package,
or the image to re-tag), detect the language, build it on BuildKit, push it to
the hub and roll the new version out. The log names each stage, the file that
decided the language, and on failure the step's own output.

--upload sends a jar, war, zip or tar.gz first (in resumable chunks, with a
progress bar) for a component created with a package source.`,
		Example: `  berth build site
  berth build api --upload target/api.jar`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, ref, err := c.component(ctx, args[0])
			if err != nil {
				return err
			}
			uploadID := ""
			if upload != "" {
				up, err := cl.UploadFile(ctx, ref, upload, func(sent, total int64) {
					if c.tty {
						fmt.Fprintf(c.out(), "\r%s", progressBar(sent, total, 30))
					}
				})
				if c.tty {
					fmt.Fprintln(c.out())
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.out(), "Uploaded %s (%d bytes) as %s.\n", upload, up.Size, up.ID)
				uploadID = up.ID
			}
			id, err := cl.Build(ctx, ref, uploadID)
			if err != nil {
				return err
			}
			return c.followEvent(ctx, cl, id, detach)
		},
	}
	cmd.Flags().StringVar(&upload, "upload", "", "package to upload and build (jar, war, zip, tar.gz)")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "print the event id and return without following the log")
	return cmd
}

// progressBar draws "[=====>     ] 45% 12.0/26.7 MiB".
func progressBar(done, total int64, width int) string {
	if total <= 0 {
		total = 1
	}
	filled := int(done * int64(width) / total)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	return fmt.Sprintf("[%s] %3d%% %.1f/%.1f MiB", bar, done*100/total, float64(done)/(1<<20), float64(total)/(1<<20))
}

func newCancelCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel EVENT_ID",
		Short: "Cancel a running operation (a build, most often)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			if err := cl.CancelEvent(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Cancelling %s; its log ends with the outcome.\n", args[0])
			return nil
		},
	}
}

func newImagesCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "images", Short: "Base images of builds"}
	var langs []string
	var rebuild, detach bool
	prepare := &cobra.Command{
		Use:   "prepare [LANGUAGE...] [--lang go,node,python,java,static]",
		Short: "Build offline base images from Debian's packages into the hub",
		Long: `Build the builder and runner base images of each language from Debian's
packages (debootstrap, then golang-go, nodejs and npm, python3, default-jdk and
maven, a small static file server) and push them into berth's hub. From then on
builds of these languages need no internet. Needs the admin token; the first
run downloads a few hundred MB of Debian packages.

Languages may be named as arguments ("berth images prepare go node") or with
--lang; without either, every language is prepared.`,
		Example:   "  berth images prepare go\n  berth images prepare --lang node,python --rebuild",
		ValidArgs: []string{"go", "node", "python", "java", "static"},
		Args:      cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			id, err := cl.PrepareImages(cmd.Context(), append(langs, args...), rebuild)
			if err != nil {
				return err
			}
			return c.followEvent(cmd.Context(), cl, id, detach)
		},
	}
	prepare.Flags().StringSliceVar(&langs, "lang", nil, "languages to prepare (default all)")
	prepare.Flags().BoolVar(&rebuild, "rebuild", false, "build every image again")
	prepare.Flags().BoolVarP(&detach, "detach", "d", false, "print the event id and return without following the log")
	cmd.AddCommand(prepare)
	return cmd
}
