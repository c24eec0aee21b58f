package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/client"
)

func newEventsCmd(c *cli) *cobra.Command {
	var (
		format string
		all    bool
		filter client.EventFilter
	)
	cmd := &cobra.Command{
		Use:   "events [ALIAS]",
		Short: "List operations (builds, deploys, restarts...) with their status",
		Long: `List the events of the team, newest first, or of one component when ALIAS
is given. --all lists the events of every team (admin token only). Read the
log of one with "berth logs EVENT_ID".`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var events []client.Event
			switch {
			case len(args) == 1:
				if all {
					return fmt.Errorf("--all lists every team's events; it cannot be combined with ALIAS")
				}
				cl, ref, err := c.component(ctx, args[0])
				if err != nil {
					return err
				}
				if events, err = cl.ListComponentEvents(ctx, ref); err != nil {
					return err
				}
				if filter.Limit > 0 && len(events) > filter.Limit {
					events = events[:filter.Limit]
				}
			case all:
				if c.teamFlag != "" {
					return fmt.Errorf("--all lists every team's events; drop --team")
				}
				cl, err := c.client()
				if err != nil {
					return err
				}
				if events, err = cl.ListEvents(ctx, filter); err != nil {
					return err
				}
			default:
				cl, team, err := c.session(ctx)
				if err != nil {
					return err
				}
				filter.Team = team
				if events, err = cl.ListEvents(ctx, filter); err != nil {
					return err
				}
			}
			return c.render(format, events, func() { eventTable(c, events, all) })
		},
	}
	f := cmd.Flags()
	f.BoolVar(&all, "all", false, "events of every team (admin token only)")
	f.StringVar(&filter.Status, "status", "", "only events in this status: running, success or failure")
	f.StringVar(&filter.Target, "target", "", "only events whose target starts with this, e.g. component:acme/shop/web")
	f.IntVar(&filter.Limit, "limit", 50, "at most this many events (0: the server's limit)")
	addOutputFlag(cmd, &format)
	return cmd
}

func eventTable(c *cli, events []client.Event, withTeam bool) {
	header := []string{"ID", "TYPE", "TARGET", "STATUS", "STARTED", "DURATION", "MESSAGE"}
	if withTeam {
		header = append([]string{"TEAM"}, header...)
	}
	t := newTable(header...)
	for _, ev := range events {
		message := ev.Message
		if ev.Reason != "" && message == "" {
			message = ev.Reason
		}
		row := []any{ev.ID, ev.Type, ev.Target, cell{ev.Status, eventColors[ev.Status]},
			ago(ev.CreatedAt), orDash(eventDuration(ev)), orDash(firstLine(message, 60))}
		if withTeam {
			row = append([]any{orDash(ev.Team)}, row...)
		}
		t.row(row...)
	}
	t.write(c)
}

// eventDuration is how long an event ran, or has run so far.
func eventDuration(ev client.Event) string {
	if ev.StartedAt == nil {
		return ""
	}
	end := time.Now()
	if ev.FinishedAt != nil {
		end = *ev.FinishedAt
	}
	return shortDuration(end.Sub(*ev.StartedAt))
}

// firstLine keeps table rows to one line of at most n runes.
func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return s
}

// isEventID matches the ids the server issues: "ev-" and 16 lower-case
// base32 characters.
func isEventID(s string) bool {
	rest, ok := strings.CutPrefix(s, "ev-")
	if !ok || len(rest) != 16 {
		return false
	}
	for _, r := range rest {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}

func newLogsCmd(c *cli) *cobra.Command {
	var (
		follow bool
		opts   client.LogsOptions
		tail   int
	)
	cmd := &cobra.Command{
		Use:   "logs (EVENT_ID | ALIAS) [-f]",
		Short: "Print the log of an event, or the output of a component's containers",
		Long: `Print the log of an operation (an event id, ev-...) or the output of a
component's containers (an ALIAS).

For an event, -f keeps printing new lines until the operation ends, then
exits with status 1 if it failed. Find event ids with "berth events".

For a component, the output of all its instances is interleaved line by
line, each line prefixed with "[instance-id]" when there are several;
--instance reads one (list them with "berth instances ALIAS"), --previous
the container it ran before its last restart, e.g. the one that crashed.
Every line kept is printed, or with -f the last 100 and then new lines as
they are written, until Ctrl-C; --tail N changes how many (-1: all).`,
		Example: `  berth logs ev-3kq7x2m9abcd2efg
  berth logs -f ev-3kq7x2m9abcd2efg
  berth logs web --tail 50
  berth logs -f web --instance web-6d5f8
  berth logs web --instance web-6d5f8 --previous`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !isEventID(id) {
				opts.Follow = follow
				return c.componentLogs(cmd, id, opts, tail)
			}
			for _, flag := range []string{"instance", "previous", "tail"} {
				if cmd.Flags().Changed(flag) {
					return errNotEventFlag(flag, id)
				}
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			p := newLogPrinter(c)
			ev, err := cl.ReadLog(cmd.Context(), id, 0, p.line)
			if err != nil {
				return err
			}
			if !follow {
				if !ev.Done() {
					fmt.Fprintf(c.err(), "(still running; follow it with \"berth logs -f %s\")\n", id)
				}
				return nil
			}
			if !ev.Done() {
				if ev, err = p.follow(cmd.Context(), cl, id); err != nil {
					return err
				}
			}
			return p.result(ev)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow the log: until the event ends, or until Ctrl-C for a component")
	f.StringVar(&opts.Instance, "instance", "", "component: only this instance's output")
	f.BoolVar(&opts.Previous, "previous", false, "component: the output of the container before the last restart")
	f.IntVar(&tail, "tail", 0, "component: start with the last N lines (default: all, or 100 with -f; -1: all)")
	return cmd
}

// logPrinter writes log lines with stage markers and, on a terminal, a
// spinner while an operation runs silently.
type logPrinter struct {
	c *cli

	mu       sync.Mutex
	w        io.Writer
	stage    string
	last     int64 // seq of the last line written
	spinning bool  // a spinner frame is on the screen
	lastLine time.Time
}

func newLogPrinter(c *cli) *logPrinter {
	return &logPrinter{c: c, w: c.out(), lastLine: time.Now()}
}

func (p *logPrinter) line(l client.Line) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearSpinner()
	if l.Stage != "" && l.Stage != p.stage {
		fmt.Fprintln(p.w, p.c.paint("==> "+stageTitle(l.Stage), colorBold))
		p.stage = l.Stage
	}
	text := l.Text
	switch l.Level {
	case "error":
		text = p.c.paint(text, colorRed)
	case "warn":
		text = p.c.paint(text, colorYellow)
	}
	fmt.Fprintln(p.w, text)
	p.last, p.lastLine = l.Seq, time.Now()
	return nil
}

// stageTitle capitalises a stage name for its marker: "build" -> "Build",
// "app_start" -> "App start".
func stageTitle(s string) string {
	if s == "" {
		return s
	}
	s = strings.ReplaceAll(s, "_", " ")
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// spinnerDelay is how long a log may stay silent before the spinner shows;
// shorter would flicker between lines that come in quick succession.
const spinnerDelay = 700 * time.Millisecond

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// spin draws the spinner until ctx ends; only on a terminal, where a
// carriage return can take the frame back.
func (p *logPrinter) spin(ctx context.Context) {
	if !p.c.tty {
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for frame := 0; ; frame++ {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			p.clearSpinner()
			p.mu.Unlock()
			return
		case <-tick.C:
		}
		p.mu.Lock()
		if silent := time.Since(p.lastLine); silent >= spinnerDelay {
			fmt.Fprintf(p.w, "\r%s waiting for output (%s)\x1b[K",
				spinnerFrames[frame%len(spinnerFrames)], silent.Round(time.Second))
			p.spinning = true
		}
		p.mu.Unlock()
	}
}

// clearSpinner erases the spinner's line; the caller holds p.mu.
func (p *logPrinter) clearSpinner() {
	if p.spinning {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.spinning = false
	}
}

// follow streams the rest of the log, after the lines printed so far.
func (p *logPrinter) follow(ctx context.Context, cl *client.Client, id string) (*client.Event, error) {
	spinCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.spin(spinCtx)
	}()
	defer func() { stop(); <-done }()
	p.mu.Lock()
	after := p.last
	p.mu.Unlock()
	return cl.FollowLog(ctx, id, after, p.line)
}

// result reports how an event ended; a failure is the command's error, so
// the exit status tells scripts.
func (p *logPrinter) result(ev *client.Event) error {
	if ev.Failed() {
		msg := ev.Message
		if msg == "" {
			msg = orDash(ev.Reason)
		}
		return fmt.Errorf("%s %s failed: %s", ev.Type, ev.Target, msg)
	}
	fmt.Fprintln(p.w, p.c.paint(fmt.Sprintf("==> %s succeeded", stageTitle(ev.Type)), colorGreen))
	return nil
}
