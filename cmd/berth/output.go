package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/text/width"
)

// ANSI colours for statuses.
const (
	colorNone   = ""
	colorGreen  = "\x1b[32m"
	colorRed    = "\x1b[31m"
	colorYellow = "\x1b[33m"
	colorGrey   = "\x1b[90m"
	colorBold   = "\x1b[1m"
	colorReset  = "\x1b[0m"
)

// componentColors says at a glance whether a component needs attention.
var componentColors = map[string]string{
	"running":       colorGreen,
	"abnormal":      colorRed,
	"build_failure": colorRed,
	"some_abnormal": colorYellow,
	"waiting":       colorYellow,
	"scheduling":    colorYellow,
	"starting":      colorYellow,
	"upgrade":       colorYellow,
	"stopping":      colorYellow,
	"building":      colorYellow,
	"closed":        colorGrey,
	"undeploy":      colorGrey,
}

// eventColors: a running event is work in progress, not a healthy state, so
// it is yellow like the component statuses in transition.
var eventColors = map[string]string{
	"success": colorGreen,
	"failure": colorRed,
	"running": colorYellow,
}

var versionColors = map[string]string{
	"success":  colorGreen,
	"failure":  colorRed,
	"building": colorYellow,
}

var instanceColors = map[string]string{
	"running":     colorGreen,
	"abnormal":    colorRed,
	"failed":      colorRed,
	"unhealthy":   colorRed,
	"scheduling":  colorYellow,
	"initiating":  colorYellow,
	"not_ready":   colorYellow,
	"terminating": colorYellow,
	"succeeded":   colorGrey,
}

// paint colours s when the output is a colour terminal.
func (c *cli) paint(s, color string) string {
	if color == colorNone || !c.color() {
		return s
	}
	return color + s + colorReset
}

// cell is one table cell; the colour is kept apart from the text so that
// column widths are measured on what the terminal shows.
type cell struct {
	text  string
	color string
}

// table writes aligned columns. text/tabwriter cannot be used: it counts
// colour escapes as width and Chinese status labels as one column each.
type table struct {
	header []string
	rows   [][]cell
	notes  map[int][]string // lines written under a row, by row index
}

func newTable(header ...string) *table { return &table{header: header} }

// row adds a row of plain strings or cells.
func (t *table) row(values ...any) {
	r := make([]cell, len(values))
	for i, v := range values {
		switch v := v.(type) {
		case cell:
			r[i] = v
		case string:
			r[i] = cell{text: v}
		default:
			r[i] = cell{text: fmt.Sprint(v)}
		}
	}
	t.rows = append(t.rows, r)
}

// note adds lines under the last row, indented to its second column, for
// what does not fit a cell (an error message, advice).
func (t *table) note(lines ...string) {
	if len(t.rows) == 0 || len(lines) == 0 {
		return
	}
	if t.notes == nil {
		t.notes = map[int][]string{}
	}
	i := len(t.rows) - 1
	t.notes[i] = append(t.notes[i], lines...)
}

func (t *table) write(c *cli) {
	w := c.out()
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = displayWidth(h)
	}
	for _, r := range t.rows {
		for i, v := range r {
			widths[i] = max(widths[i], displayWidth(v.text))
		}
	}
	line := func(cells []cell) {
		var b strings.Builder
		for i, v := range cells {
			b.WriteString(c.paint(v.text, v.color))
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-displayWidth(v.text)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	head := make([]cell, len(t.header))
	for i, h := range t.header {
		head[i] = cell{text: h}
	}
	line(head)
	indent := strings.Repeat(" ", widths[0]+2)
	for i, r := range t.rows {
		line(r)
		for _, n := range t.notes[i] {
			fmt.Fprintln(w, indent+n)
		}
	}
}

// displayWidth counts terminal columns: wide (CJK) runes take two.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// addOutputFlag gives a list or get command "-o json" for scripts.
func addOutputFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, "output", "o", "table", "output format: table or json")
}

// render writes v as JSON when asked to, else calls human.
func (c *cli) render(format string, v any, human func()) error {
	switch format {
	case "json":
		return writeJSON(c.out(), v)
	case "table", "":
		human()
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table or json", format)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// field writes one "Name: value" line of a detail view.
func (c *cli) field(name, value string) {
	if value == "" {
		return
	}
	fmt.Fprintf(c.out(), "%-15s %s\n", name+":", value)
}

// ago writes how long ago t was, compactly, for tables.
func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return compactDuration(time.Since(t)) + " ago"
}

func compactDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// shortDuration writes how long something took with as much precision as
// its size deserves: "12ms", "3.4s", "2m5s".
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// timestamp writes an absolute time for detail views.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// yesNo keeps boolean table columns short.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}

// orDash fills empty table cells so columns stay readable.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
