package plan

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
)

var procfileLine = regexp.MustCompile(`^([A-Za-z0-9_-]+)\s*:\s*(.+)$`)

// parseProcfile returns the command of the "web" process of a Procfile, or
// of its only process: Rainbond and Heroku start that one.
func parseProcfile(data []byte) string {
	var first string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := procfileLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[1] == "web" {
			return strings.TrimSpace(m[2])
		}
		if first == "" {
			first = strings.TrimSpace(m[2])
		}
	}
	return first
}
