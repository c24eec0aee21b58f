package plan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/berth-platform/berth/internal/model"
)

// ErrNothingDetected is matched by errors.Is on a *NothingDetectedError.
var ErrNothingDetected = errors.New("no buildable code detected")

// markerFiles is what Detect looks for, in its order; the list is shown to
// the user when nothing matches.
var markerFiles = []string{
	"Dockerfile",
	"pom.xml, build.gradle, build.gradle.kts, *.jar, *.war (Java)",
	"package.json (Node.js)",
	"requirements.txt, pyproject.toml, Pipfile (Python)",
	"go.mod (Go)",
	"composer.json, index.php (PHP)",
	"index.html (static site)",
	"Gemfile (Ruby)",
	"*.csproj (.NET)",
}

// NothingDetectedError says which files berth looks for and which it found.
type NothingDetectedError struct {
	Dir   string   // relative to the source root; "" for the root
	Found []string // some of the names present, to spot a wrong directory
}

func (e *NothingDetectedError) Error() string {
	where := "the repository root"
	if e.Dir != "" {
		where = fmt.Sprintf("%q", e.Dir)
	}
	found := "it is empty"
	if len(e.Found) > 0 {
		found = "it holds " + strings.Join(e.Found, ", ")
	}
	return fmt.Sprintf("berth cannot tell how to build the code in %s (%s). It looks for, in this order: %s. "+
		"Add one of these files, set the build path (rainbondfile \"buildpath\" or the component's subdirectory) "+
		"if the code is in a subdirectory, or choose the language explicitly",
		where, found, strings.Join(markerFiles, "; "))
}

func (e *NothingDetectedError) Unwrap() error { return ErrNothingDetected }

// UnknownLanguageError is a language override berth does not know.
type UnknownLanguageError struct {
	Name   string
	Source string // "override" or "rainbondfile"
}

func (e *UnknownLanguageError) Error() string {
	return fmt.Sprintf("unknown language %q in the %s; use one of: %s", e.Name, e.Source, strings.Join(LanguageNames(), ", "))
}

// Unwrap makes the API answer 400.
func (e *UnknownLanguageError) Unwrap() error {
	return &model.ValidationError{Field: "source.language", Rule: "unknown language " + e.Name}
}

// BuildPathError is a buildpath or subdirectory that does not name a
// directory inside the source.
type BuildPathError struct {
	Path   string
	Reason string
}

func (e *BuildPathError) Error() string {
	return fmt.Sprintf("build path %q %s; give a directory relative to the repository root, such as \"services/api\"", e.Path, e.Reason)
}

func (e *BuildPathError) Unwrap() error {
	return &model.ValidationError{Field: "source.subdir", Rule: e.Reason}
}

// ManifestError is a project file that cannot be read (bad JSON, YAML).
type ManifestError struct {
	File string
	Err  error
}

func (e *ManifestError) Error() string {
	if leaves(e.Err) { // it says what is wrong and what to do itself
		return e.Err.Error()
	}
	return fmt.Sprintf("cannot read %s: %v; fix the file and build again", e.File, e.Err)
}

func (e *ManifestError) Unwrap() error { return e.Err }

// StartCommandError is code that builds but whose start berth cannot guess.
type StartCommandError struct {
	Language Language
	Looked   []string // what was tried
}

func (e *StartCommandError) Error() string {
	return fmt.Sprintf("berth cannot tell how to start this %s application (looked for %s); "+
		"add a Procfile with a line \"web: <command>\", or set \"cmd\" in the rainbondfile",
		e.Language, strings.Join(e.Looked, ", "))
}

// NoBaseImageError is a language for which the configured image set has no
// builder or runner (for example .NET with the offline images).
type NoBaseImageError struct {
	Language Language
	Role     string // "builder" or "runner"
}

func (e *NoBaseImageError) Error() string {
	return fmt.Sprintf("no %s base image is configured for %s; configure one, or provide a Dockerfile", e.Role, e.Language)
}

// MarkerMissingError is a language chosen by the user whose essential file
// is absent: a jar build without a jar, a Dockerfile build without one.
type MarkerMissingError struct {
	Language Language
	Want     string // e.g. "a *.jar file"
	ForcedBy string
}

func (e *MarkerMissingError) Error() string {
	return fmt.Sprintf("the language %s was chosen (%s) but the build directory has no %s; add it, or choose another language",
		e.Language, e.ForcedBy, e.Want)
}

// LinkError is a file berth needs that is, or lies under, a symbolic link
// leaving the source directory (or a link loop). berth never follows it.
type LinkError struct {
	File   string // the file berth wanted, relative to the source root
	Link   string // the symlink that leaves
	Target string // its target as written
	Loop   bool
}

func (e *LinkError) Error() string {
	if e.Loop {
		return fmt.Sprintf("%s cannot be read: its symbolic links form a loop; commit the file itself instead of the links", e.File)
	}
	via := ""
	if e.Link != e.File {
		via = fmt.Sprintf(" through %s", e.Link)
	}
	return fmt.Sprintf("%s leaves the source directory%s (a symbolic link to %q); berth reads only files inside the repository: commit the file itself instead of the link",
		e.File, via, e.Target)
}
