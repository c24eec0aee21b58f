package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newLoginCmd(c *cli) *cobra.Command {
	var token string
	cmd := &cobra.Command{
		Use:   "login URL --token TOKEN",
		Short: "Check a server address and token, then save them",
		Long: `Check that the server at URL accepts the token, then save both in
$XDG_CONFIG_HOME/berth/config.json (or ~/.config/berth/config.json), readable
by you only. Use "--token -" to read the token from stdin, which keeps it out
of your shell history. BERTH_URL and BERTH_TOKEN, when set, override the
saved values.`,
		Example: `  berth login http://127.0.0.1:8080 --token "$(cat /var/lib/berth/admin-token)"
  echo "$TOKEN" | berth login https://berth.example.com --token -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := strings.TrimRight(args[0], "/")
			if u, err := url.Parse(server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%q is not a server URL: use http://HOST:PORT or https://HOST", args[0])
			}
			if token == "-" {
				line, err := bufio.NewReader(c.stdin).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("read the token from stdin: %w", err)
				}
				token = strings.TrimSpace(line)
			}
			if token == "" {
				return errors.New(`a token is required: pass --token TOKEN (or "--token -" to read it from stdin)`)
			}
			id, err := c.newClient(server, token).WhoAmI(cmd.Context())
			var apiErr *client.Error
			switch {
			case errors.As(err, &apiErr) && apiErr.Status == 401:
				// Said here rather than with the generic 401 hint, which
				// would tell the user to run the command they just ran.
				return fmt.Errorf("%s refused the token: %s", server, apiErr.Message)
			case err != nil:
				return fmt.Errorf("cannot log in to %s: %w", server, err)
			}

			cfg, err := c.loadConfig()
			if err != nil {
				cfg = config{} // a damaged file is rewritten
			}
			if cfg.URL != server || (id.Team != "" && id.Team != cfg.Team) {
				// The team and app chosen for another server or team would
				// point to things this token cannot see.
				cfg.Team, cfg.App = id.Team, ""
			}
			cfg.URL, cfg.Token = server, token
			if err := c.saveConfig(cfg); err != nil {
				return fmt.Errorf("save the login: %w", err)
			}
			fmt.Fprintf(c.out(), "Logged in to %s as %s.\n", server, describeIdentity(id))
			for _, env := range []string{"BERTH_URL", "BERTH_TOKEN"} {
				if c.getenv(env) != "" {
					fmt.Fprintf(c.err(), "Note: %s is set and overrides the saved login.\n", env)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&token, "token", "", `API token ("-" reads it from stdin)`)
	return cmd
}

// describeIdentity says who a token acts as in one phrase.
func describeIdentity(id *client.Identity) string {
	name := id.Name
	if id.Member != "" {
		name = fmt.Sprintf("%s (token %s)", id.Member, id.Name)
	}
	switch {
	case id.Admin:
		return fmt.Sprintf("the server admin (token %s)", name)
	case id.Team != "":
		return fmt.Sprintf("%s, %s of team %s", name, orDash(id.Role), id.Team)
	}
	return name
}

func newWhoamiCmd(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the current token acts as",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.client()
			if err != nil {
				return err
			}
			id, err := cl.WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			return c.render(format, id, func() {
				fmt.Fprintf(c.out(), "%s on %s\n", describeIdentity(id), cl.BaseURL())
			})
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func newUseCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "use [TEAM[/APP]]",
		Short: "Choose the default team and app, or show them",
		Long: `Save TEAM (and APP) as the defaults of later commands. --team/--app and
BERTH_TEAM/BERTH_APP still win over them. Without an argument, show the
current choice.`,
		Example: `  berth use acme/shop
  berth use acme`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return showSelection(c)
			}
			team, app, err := splitTeamApp(args[0])
			if err != nil {
				return err
			}
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			// Check the names when we can, so that a typo fails now rather
			// than on every later command.
			if cl, err := c.client(); err == nil {
				if _, err := cl.GetTeam(cmd.Context(), team); err != nil {
					return err
				}
				if app != "" {
					if _, err := cl.GetApp(cmd.Context(), team, app); err != nil {
						return err
					}
				}
			}
			cfg.Team, cfg.App = team, app
			if err := c.saveConfig(cfg); err != nil {
				return err
			}
			if app == "" {
				fmt.Fprintf(c.out(), "Using team %s.\n", team)
			} else {
				fmt.Fprintf(c.out(), "Using team %s, app %s.\n", team, app)
			}
			return nil
		},
	}
}

func showSelection(c *cli) error {
	cfg, err := c.loadConfig()
	if err != nil {
		return err
	}
	source := func(flag, env, saved string) string {
		switch {
		case flag != "":
			return flag + " (flag)"
		case c.getenv(env) != "":
			return c.getenv(env) + " ($" + env + ")"
		case saved != "":
			return saved
		}
		return "(none)"
	}
	fmt.Fprintf(c.out(), "Team: %s\nApp:  %s\n",
		source(c.teamFlag, "BERTH_TEAM", cfg.Team), source(c.appFlag, "BERTH_APP", cfg.App))
	return nil
}
