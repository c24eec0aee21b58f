package baseimage

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// DefaultMirror is used when the machine's apt configuration names no
// Debian mirror for the suite.
const DefaultMirror = "http://deb.debian.org/debian"

// aptSource is one "deb" entry of the machine's apt configuration.
type aptSource struct {
	uri        string
	suites     []string
	components []string
}

// mirrors finds the machine's Debian mirror and security mirror for suite
// in /etc/apt/sources.list(.d): the machine can reach what it installs its
// own packages from, which on an offline network is a local mirror, not
// deb.debian.org.
func mirrors(aptDir, suite string) (main, security string) {
	srcs := readAptSources(aptDir)
	for _, s := range srcs {
		for _, su := range s.suites {
			switch {
			case su == suite && main == "":
				main = s.uri
			case su == suite+"-security" && security == "":
				security = s.uri
			}
		}
	}
	if main == "" {
		main = DefaultMirror
	}
	if security == "" && strings.HasSuffix(strings.TrimRight(main, "/"), "/debian") {
		security = strings.TrimRight(main, "/") + "-security"
	}
	return main, security
}

// readAptSources parses one-line (.list) and deb822 (.sources) files,
// skipping disabled entries and deb-src.
func readAptSources(aptDir string) []aptSource {
	var out []aptSource
	files := []string{filepath.Join(aptDir, "sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", pat))
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if strings.HasSuffix(f, ".sources") {
			out = append(out, parseDeb822(string(b))...)
		} else {
			out = append(out, parseOneLine(string(b))...)
		}
	}
	return out
}

// parseOneLine reads "deb [options] URI suite component..." lines.
func parseOneLine(text string) []aptSource {
	var out []aptSource
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, aptSource{uri: f[0], suites: []string{f[1]}, components: f[2:]})
	}
	return out
}

// parseDeb822 reads stanzas of "Types: deb / URIs: ... / Suites: ..."
// separated by blank lines.
func parseDeb822(text string) []aptSource {
	var out []aptSource
	for _, stanza := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		if !strings.Contains(" "+fields["types"]+" ", " deb ") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, aptSource{uri: uri, suites: strings.Fields(fields["suites"]), components: strings.Fields(fields["components"])})
		}
	}
	return out
}
