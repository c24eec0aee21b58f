package plan

import (
	"sort"
	"strings"
)

// Language is how berth builds a directory.
type Language string

const (
	Dockerfile Language = "dockerfile"
	JavaMaven  Language = "java-maven"
	JavaGradle Language = "java-gradle"
	JavaJar    Language = "java-jar"
	JavaWar    Language = "java-war"
	NodeJS     Language = "nodejs"
	Python     Language = "python"
	Go         Language = "go"
	PHP        Language = "php"
	Static     Language = "static"
	Ruby       Language = "ruby"
	DotNet     Language = "dotnet"
)

// languageNames accepts berth's names and Rainbond's (Java-maven, Node.js,
// .NetCore, ...), case-insensitively, so rainbondfiles written for Rainbond
// keep working. "java" alone is resolved from the files (see Detect).
var languageNames = map[string]Language{
	"dockerfile":   Dockerfile,
	"docker":       Dockerfile,
	"java-maven":   JavaMaven,
	"maven":        JavaMaven,
	"java-gradle":  JavaGradle,
	"gradle":       JavaGradle,
	"java-jar":     JavaJar,
	"jar":          JavaJar,
	"java-war":     JavaWar,
	"war":          JavaWar,
	"nodejs":       NodeJS,
	"node.js":      NodeJS,
	"node":         NodeJS,
	"nodejsstatic": NodeJS,
	"python":       Python,
	"go":           Go,
	"golang":       Go,
	"php":          PHP,
	"static":       Static,
	"html":         Static,
	"ruby":         Ruby,
	"dotnet":       DotNet,
	".netcore":     DotNet,
	"netcore":      DotNet,
	".net":         DotNet,
}

// ParseLanguage maps a user-given name to a Language. "java" returns ok
// with an empty Language: the Java flavour comes from the files.
func ParseLanguage(name string) (Language, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "java" {
		return "", true
	}
	l, ok := languageNames[n]
	return l, ok
}

// LanguageNames lists the names ParseLanguage accepts, for error messages.
func LanguageNames() []string {
	seen := map[Language]bool{}
	var out []string
	for _, l := range languageNames {
		if !seen[l] {
			seen[l] = true
			out = append(out, string(l))
		}
	}
	out = append(out, "java")
	sort.Strings(out)
	return out
}
