package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

// config is what "berth login" and "berth use" remember between runs.
type config struct {
	URL   string `json:"url,omitempty"`
	Token string `json:"token,omitempty"`
	Team  string `json:"team,omitempty"`
	App   string `json:"app,omitempty"`
}

// cli is the state one command line shares: where it reads its settings
// from and how it may decorate its output.
type cli struct {
	stdin  io.Reader
	getenv func(string) string
	// tty says stdout is a terminal: only then are colours and spinners
	// written, so that pipes and files get plain text.
	tty bool
	// term is stdin when it is a terminal ("berth exec" can then give the
	// remote command a TTY), nil otherwise.
	term terminal

	root              *cobra.Command
	teamFlag, appFlag string

	// clientOptions are passed to every client; tests shorten timeouts.
	clientOptions []client.Option
}

func (c *cli) out() io.Writer { return c.root.OutOrStdout() }
func (c *cli) err() io.Writer { return c.root.ErrOrStderr() }

// color says whether to colour output; NO_COLOR (no-color.org) turns it off.
func (c *cli) color() bool { return c.tty && c.getenv("NO_COLOR") == "" }

// configPath follows the XDG base directory spec, as most CLIs on Linux do.
func (c *cli) configPath() (string, error) {
	if dir := c.getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "berth", "config.json"), nil
	}
	home := c.getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("cannot find the config directory: set XDG_CONFIG_HOME or HOME")
		}
	}
	return filepath.Join(home, ".config", "berth", "config.json"), nil
}

func (c *cli) loadConfig() (config, error) {
	var cfg config
	p, err := c.configPath()
	if err != nil {
		return cfg, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("%s is damaged (%v); run \"berth login\" again to rewrite it", p, err)
	}
	return cfg, nil
}

// saveConfig writes the file readable by its owner only, because it holds
// the token, and atomically, so a crash never leaves half a file.
func (c *cli) saveConfig(cfg config) error {
	p, err := c.configPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".config-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

var errNotLoggedIn = errors.New(`not logged in: run "berth login URL --token TOKEN", or set BERTH_URL and BERTH_TOKEN`)

// client builds an API client from BERTH_URL and BERTH_TOKEN, which win over
// the saved login so that scripts and CI need no config file.
func (c *cli) client() (*client.Client, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	url, token := cfg.URL, cfg.Token
	if v := c.getenv("BERTH_URL"); v != "" {
		url = v
	}
	if v := c.getenv("BERTH_TOKEN"); v != "" {
		token = v
	}
	if url == "" {
		return nil, errNotLoggedIn
	}
	return c.newClient(url, token), nil
}

func (c *cli) newClient(url, token string) *client.Client {
	opts := append([]client.Option{client.WithUserAgent("berth-cli")}, c.clientOptions...)
	return client.New(url, token, opts...)
}

// team resolves the team to act in: --team, then BERTH_TEAM, then "berth
// use", and last the team of a team-scoped token, which can act in no other.
func (c *cli) team(ctx context.Context, cl *client.Client) (string, error) {
	if c.teamFlag != "" {
		return c.teamFlag, nil
	}
	if v := c.getenv("BERTH_TEAM"); v != "" {
		return v, nil
	}
	cfg, err := c.loadConfig()
	if err != nil {
		return "", err
	}
	if cfg.Team != "" {
		return cfg.Team, nil
	}
	id, err := cl.WhoAmI(ctx)
	if err != nil {
		return "", err
	}
	if id.Team != "" {
		return id.Team, nil
	}
	return "", errors.New(`no team selected: pass --team, set BERTH_TEAM, or run "berth use TEAM"`)
}

// app resolves the app like team; "" means none was selected.
func (c *cli) app() (string, error) {
	if c.appFlag != "" {
		return c.appFlag, nil
	}
	if v := c.getenv("BERTH_APP"); v != "" {
		return v, nil
	}
	cfg, err := c.loadConfig()
	return cfg.App, err
}

// requireApp is app for commands that cannot work without one.
func (c *cli) requireApp() (string, error) {
	app, err := c.app()
	if err == nil && app == "" {
		err = errors.New(`no app selected: pass --app, set BERTH_APP, or run "berth use TEAM/APP"`)
	}
	return app, err
}

// session is what most commands start with: a client and the team.
func (c *cli) session(ctx context.Context) (*client.Client, string, error) {
	cl, err := c.client()
	if err != nil {
		return nil, "", err
	}
	team, err := c.team(ctx, cl)
	if err != nil {
		return nil, "", err
	}
	return cl, team, nil
}

// component resolves ALIAS to a component reference. Aliases are unique in
// a team, so without a selected app the component is looked up in every
// app of the team rather than refusing.
func (c *cli) component(ctx context.Context, alias string) (*client.Client, client.ComponentRef, error) {
	cl, team, err := c.session(ctx)
	if err != nil {
		return nil, client.ComponentRef{}, err
	}
	app, err := c.app()
	if err != nil {
		return nil, client.ComponentRef{}, err
	}
	if app != "" {
		return cl, client.ComponentRef{Team: team, App: app, Component: alias}, nil
	}
	apps, err := cl.ListApps(ctx, team)
	if err != nil {
		return nil, client.ComponentRef{}, err
	}
	for _, a := range apps {
		comps, err := cl.ListComponents(ctx, team, a.Name)
		if err != nil {
			return nil, client.ComponentRef{}, err
		}
		for _, comp := range comps {
			if comp.Alias == alias {
				return cl, client.ComponentRef{Team: team, App: a.Name, Component: alias}, nil
			}
		}
	}
	return nil, client.ComponentRef{}, fmt.Errorf("component %q not found in any app of team %q", alias, team)
}

// splitTeamApp reads TEAM[/APP].
func splitTeamApp(s string) (team, app string, err error) {
	team, app, _ = strings.Cut(s, "/")
	if team == "" || strings.Contains(app, "/") {
		return "", "", fmt.Errorf("%q is not TEAM or TEAM/APP", s)
	}
	return team, app, nil
}
