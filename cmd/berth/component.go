package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newComponentCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "component",
		Aliases: []string{"components", "comp"},
		Short:   "Create, list, get and delete components",
		Long: `A component is one deployable unit of an app: a container image, source
code that berth builds, or a third-party service berth only addresses.
Aliases are unique in a team; commands taking an ALIAS find its app by
themselves when no app is selected.`,
	}
	cmd.AddCommand(newComponentCreateCmd(c), newComponentListCmd(c, "list"), newComponentGetCmd(c), newComponentUpdateCmd(c),
		newComponentDeleteCmd(c))
	return cmd
}

func newComponentDeleteCmd(c *cli) *cobra.Command {
	var opts client.DeleteOptions
	var detach bool
	cmd := &cobra.Command{
		Use:     "delete ALIAS",
		Aliases: []string{"rm"},
		Short:   "Delete a component with its instances, volumes, versions, dependencies and gateway rules",
		Long: `Delete a component: its instances stop, and its service addresses, logs,
volumes (unless --keep-volumes), versions, dependencies, gateway rules and
built images go. The delete runs as an operation whose log is followed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			id, err := cl.DeleteComponent(cmd.Context(), ref, opts)
			if err != nil {
				return err
			}
			return c.followEvent(cmd.Context(), cl, id, detach)
		},
	}
	cmd.Flags().BoolVar(&opts.KeepVolumes, "keep-volumes", false, "keep the component's volumes (their data stays on disk)")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "print the event id and return without following the log")
	return cmd
}

func newComponentCreateCmd(c *cli) *cobra.Command {
	var (
		spec                    client.ComponentSpec
		ports, envs, secretEnvs []string
		source, branch          string
		src                     client.Source
		pkg                     bool
	)
	cmd := &cobra.Command{
		Use:   "create ALIAS (--image IMAGE | --source GIT_URL | --endpoint HOST:PORT) [flags] [-- CMD ARGS...]",
		Short: "Create a component in the app (it is deployed by \"berth deploy\")",
		Long: `Create a component in the selected app. The kind follows from the flags:
--image for a container image, --source for a git repository berth builds,
--endpoint for a service outside berth; --kind overrides it.

Ports are PORT[/PROTOCOL][:inner,outer]; protocol is http (default), tcp,
udp or grpc; a port with neither inner nor outer is inner (reachable by the
app's other components). The command to run replaces the image's: give it
after "--" or word by word with --cmd.`,
		Example: `  berth component create web --image nginx:1.25 --port 80/http:inner,outer --memory 256Mi
  berth component create db --image postgres:16 --port 5432/tcp --secret-env POSTGRES_PASSWORD=s3cret
  berth component create worker --image busybox -- sh -c 'while true; do date; sleep 5; done'
  berth component create api --source https://github.com/acme/api.git --branch main --port 8080
  berth component create shop --package --port 8080 && berth build shop --upload target/shop.jar`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				if dash != 1 {
					return fmt.Errorf("give one ALIAS before \"--\", got %q", args[:dash])
				}
				if len(spec.Cmd) > 0 {
					return fmt.Errorf("give the command either with --cmd or after \"--\", not both")
				}
				spec.Cmd = args[1:]
			} else if len(args) > 1 {
				return fmt.Errorf("unexpected arguments %q: put the command to run after \"--\"", args[1:])
			}
			spec.Alias = args[0]
			switch {
			case source != "":
				src.Type, src.URL, src.Branch = "git", source, branch
				if src.Password == "" {
					src.Password = c.getenv("BERTH_GIT_PASSWORD")
				}
				spec.Source = &src
			case pkg:
				src.Type = "package"
				spec.Source = &src
			case src.Image != "":
				src.Type = "image"
				spec.Source = &src
			case branch != "" || src.Tag != "" || src.Commit != "":
				return fmt.Errorf("--branch, --tag and --commit need --source")
			}
			if spec.Kind == "" {
				spec.Kind = inferKind(spec)
			}
			for _, p := range ports {
				port, err := parsePort(p)
				if err != nil {
					return fmt.Errorf("--port: %w", err)
				}
				spec.Ports = append(spec.Ports, port)
			}
			for _, list := range []struct {
				values []string
				secret bool
			}{{envs, false}, {secretEnvs, true}} {
				for _, e := range list.values {
					name, value, err := parseAssignment(e)
					if err != nil {
						return fmt.Errorf("--env: %w", err)
					}
					spec.Envs = append(spec.Envs, client.Env{Name: name, Value: value, Secret: list.secret})
				}
			}
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			app, err := c.requireApp()
			if err != nil {
				return err
			}
			comp, err := cl.CreateComponent(cmd.Context(), team, app, spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out(), "Created component %s in app %s. Deploy it with \"berth deploy %s\".\n",
				comp.Alias, app, comp.Alias)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Image, "image", "", "container image, e.g. nginx:1.25")
	f.StringVar(&source, "source", "", "git repository to build (kind source)")
	f.StringVar(&branch, "branch", "", "git branch to build (with --source)")
	f.StringVar(&src.Tag, "tag", "", "git tag to build (with --source)")
	f.StringVar(&src.Commit, "commit", "", "git commit to build (with --source)")
	f.StringVar(&src.Username, "git-user", "", "username for the repository (https)")
	f.StringVar(&src.Password, "git-password", "", "password or token for the repository (default $BERTH_GIT_PASSWORD)")
	f.StringVar(&src.Subdir, "subdir", "", "build this directory of the repository")
	f.StringVar(&src.Language, "language", "", "build as this language instead of detecting it (go, nodejs, python, java-maven, static...)")
	f.BoolVar(&pkg, "package", false, "build from packages uploaded with \"berth build ALIAS --upload FILE\" (jar, war, zip, tar.gz)")
	f.StringVar(&src.Image, "from-image", "", "re-tag this image into berth's hub and run it (kind source)")
	f.StringArrayVar(&spec.Endpoints, "endpoint", nil, "HOST:PORT of a third-party service (repeatable)")
	f.StringVar(&spec.Kind, "kind", "", "image, source or thirdparty (default: from the other flags)")
	f.IntVar(&spec.Instances, "instances", 1, "number of instances")
	f.IntVar(&spec.SettleSeconds, "settle", 0, "seconds new instances must stay ready, without a restart, before a deploy succeeds (default 10)")
	f.StringVar(&spec.Memory, "memory", "", "memory limit, e.g. 512Mi")
	f.StringVar(&spec.CPU, "cpu", "", "CPU limit, e.g. 500m or 2")
	f.StringArrayVar(&ports, "port", nil, "PORT[/PROTOCOL][:inner,outer] (repeatable)")
	f.StringArrayVar(&envs, "env", nil, "environment variable KEY=VALUE (repeatable)")
	f.StringArrayVar(&secretEnvs, "secret-env", nil, "secret variable KEY=VALUE, never shown again (repeatable)")
	f.StringArrayVar(&spec.Cmd, "cmd", nil, "one word of the command to run (repeatable; or put it after --)")
	f.StringArrayVar(&spec.Args, "arg", nil, "one argument appended to the image's command (repeatable)")
	return cmd
}

// inferKind spares the user --kind when the other flags say it already.
func inferKind(spec client.ComponentSpec) string {
	switch {
	case spec.Source != nil:
		return client.KindSource
	case len(spec.Endpoints) > 0 && spec.Image == "":
		return client.KindThirdParty
	}
	return client.KindImage
}

func newPsCmd(c *cli) *cobra.Command {
	cmd := newComponentListCmd(c, "ps")
	cmd.Short = "List components (same as \"berth component list\")"
	return cmd
}

func newComponentListCmd(c *cli, use string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   use,
		Short: "List the components of the app, or of every app of the team",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, team, err := c.session(cmd.Context())
			if err != nil {
				return err
			}
			app, err := c.app()
			if err != nil {
				return err
			}
			comps, err := listComponents(cmd.Context(), cl, team, app)
			if err != nil {
				return err
			}
			return c.render(format, comps, func() {
				if len(comps) == 0 {
					fmt.Fprintln(c.out(), `No components; create one with "berth component create ALIAS --image IMAGE".`)
					return
				}
				componentTable(c, comps, app == "")
			})
		},
	}
	if use == "list" {
		cmd.Aliases = []string{"ls"}
	}
	addOutputFlag(cmd, &format)
	return cmd
}

// listComponents lists one app's components, or every app's when app is "".
func listComponents(ctx context.Context, cl *client.Client, team, app string) ([]client.Component, error) {
	if app != "" {
		return cl.ListComponents(ctx, team, app)
	}
	apps, err := cl.ListApps(ctx, team)
	if err != nil {
		return nil, err
	}
	all := []client.Component{}
	for _, a := range apps {
		comps, err := cl.ListComponents(ctx, team, a.Name)
		if err != nil {
			return nil, err
		}
		all = append(all, comps...)
	}
	return all, nil
}

func componentTable(c *cli, comps []client.Component, withApp bool) {
	header := []string{"ALIAS", "KIND", "STATUS", "INSTANCES", "IMAGE"}
	if withApp {
		header = append([]string{"APP"}, header...)
	}
	t := newTable(header...)
	for _, comp := range comps {
		row := []any{comp.Alias, comp.Kind, cell{comp.Status, componentColors[comp.Status]},
			fmt.Sprintf("%d/%d", comp.ReadyInstances(), comp.Replicas), orDash(componentOrigin(comp))}
		if withApp {
			row = append([]any{comp.App}, row...)
		}
		t.row(row...)
	}
	t.write(c)
}

// componentOrigin is what a component runs: its image, the repository it is
// built from, or the addresses of a third-party service.
func componentOrigin(comp client.Component) string {
	switch {
	case comp.Source != nil && comp.Source.URL != "":
		ref := comp.Source.URL
		if comp.Source.Branch != "" {
			ref += "#" + comp.Source.Branch
		}
		return ref
	case comp.Source != nil && comp.Source.Type == "package":
		return "an uploaded package"
	case comp.Source != nil && comp.Source.Image != "":
		return comp.Source.Image
	case comp.Image != "":
		return comp.Image
	}
	return strings.Join(comp.Endpoints, ",")
}

func newComponentGetCmd(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:        "get ALIAS",
		SuggestFor: []string{"show", "describe", "view"},
		Short:      "Show a component: its settings, status and instances",
		Args:       cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ref, err := c.component(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			comp, err := cl.GetComponent(cmd.Context(), ref)
			if err != nil {
				return err
			}
			return c.render(format, comp, func() { showComponent(c, comp) })
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func showComponent(c *cli, comp *client.Component) {
	w := c.out()
	c.field("Component", comp.Alias)
	c.field("App", comp.Team+"/"+comp.App)
	c.field("Kind", comp.Kind)
	c.field("Image", comp.Image)
	if s := comp.Source; s != nil {
		c.field("Source", componentOrigin(*comp))
		c.field("Subdir", s.Subdir)
		c.field("Language", s.Language)
		c.field("Dockerfile", s.Dockerfile)
	}
	c.field("Endpoints", strings.Join(comp.Endpoints, ", "))
	if comp.Kind == client.KindThirdParty {
		c.field("Registered", strings.Join(comp.RegisteredEndpoints, ", "))
		c.field("Endpoint key", comp.EndpointKey)
	}
	status := c.paint(comp.Status, componentColors[comp.Status])
	if comp.StatusLabel != "" {
		status += " (" + comp.StatusLabel + ")"
	}
	c.field("Status", status)
	c.field("Message", comp.StatusMessage)
	if comp.RestartPending != "" {
		c.restartPending(comp.Alias, comp.RestartPending)
	}
	c.field("Instances", fmt.Sprintf("%d ready of %d", comp.ReadyInstances(), comp.Replicas))
	if comp.DeployVersion > 0 {
		c.field("Version", strconv.FormatInt(comp.DeployVersion, 10))
	}
	c.field("Memory", comp.Memory)
	c.field("CPU", comp.CPU)
	c.field("Command", strings.Join(comp.Cmd, " "))
	c.field("Args", strings.Join(comp.Args, " "))
	c.field("Depends on", strings.Join(comp.Dependencies, ", "))
	c.field("Readiness", describeProbe(comp.Readiness))
	c.field("Liveness", describeProbe(comp.Liveness))
	c.field("Created", timestamp(comp.CreatedAt))

	if len(comp.Ports) > 0 {
		fmt.Fprintln(w, "\nPorts:")
		for _, p := range comp.Ports {
			fmt.Fprintf(w, "  %d/%s  %s  (env prefix %s)\n", p.Port, p.Protocol, exposure(p), p.Alias)
			if p.InnerAddress != "" {
				fmt.Fprintf(w, "      inner address  %s\n", p.InnerAddress)
			}
			for _, u := range publishedAt(p) {
				fmt.Fprintf(w, "      published at   %s\n", u)
			}
		}
	}
	if len(comp.Envs) > 0 {
		fmt.Fprintln(w, "\nEnvironment:")
		for _, e := range comp.Envs {
			fmt.Fprintf(w, "  %s=%s  (%s)\n", e.Name, e.Value, orDash(e.Scope))
		}
	}
	if len(comp.Volumes) > 0 {
		fmt.Fprintln(w, "\nVolumes:")
		for _, v := range comp.Volumes {
			fmt.Fprintf(w, "  %s  %s  %s %s\n", v.Name, v.Path, orDash(v.Type), v.Size)
		}
	}
	fmt.Fprintln(w, "\nInstances:")
	if len(comp.Instances) == 0 {
		fmt.Fprintln(w, "  none running")
		return
	}
	for _, in := range comp.Instances {
		line := fmt.Sprintf("  %s  %s", in.ID, c.paint(in.Status, instanceColors[in.Status]))
		if in.Version > 0 {
			line += fmt.Sprintf("  version %d", in.Version)
		}
		if in.Address != "" {
			line += "  " + in.Address
		}
		if in.Restarts > 0 {
			line += fmt.Sprintf("  %d restarts", in.Restarts)
		}
		fmt.Fprintln(w, line)
		switch {
		case in.Reason != "" && in.Message != "":
			fmt.Fprintf(w, "      %s: %s\n", in.Reason, in.Message)
		case in.Reason != "" || in.Message != "":
			fmt.Fprintf(w, "      %s%s\n", in.Reason, in.Message)
		}
		if in.Advice != "" {
			fmt.Fprintf(w, "      advice: %s\n", in.Advice)
		}
	}
}

func describeProbe(p *client.Probe) string {
	if p == nil {
		return ""
	}
	switch p.Type {
	case "http":
		return fmt.Sprintf("http GET :%d%s", p.Port, p.Path)
	case "tcp":
		return fmt.Sprintf("tcp :%d", p.Port)
	case "exec":
		return "exec " + strings.Join(p.Command, " ")
	}
	return p.Type
}

// restartPending warns that the instances run with outdated connection
// info, and says how to fix it.
func (c *cli) restartPending(alias, why string) {
	fmt.Fprintln(c.out(), c.paint(fmt.Sprintf("Warning: restart pending: %s; \"berth restart %s\" applies it.", why, alias), colorYellow))
}
