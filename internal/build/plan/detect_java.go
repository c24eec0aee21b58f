package plan

import (
	"regexp"
	"sort"
	"strings"
)

var (
	packagingRe = regexp.MustCompile(`(?s)<packaging>\s*([A-Za-z0-9_-]+)\s*</packaging>`)
	modulesRe   = regexp.MustCompile(`<modules>`)
	includeRe   = regexp.MustCompile(`(?m)^\s*include[\s(]`)
)

// detectJava looks for Maven, then Gradle, then a packaged jar or war.
// want narrows it to one flavour; "" means any (Rainbond's "java").
func detectJava(d *dirInfo, want Language, forced bool) (Detection, bool, error) {
	if (want == "" || want == JavaMaven) && d.has("pom.xml") {
		det := Detection{Language: JavaMaven, Tool: "maven", DecidedBy: "pom.xml", Details: map[string]string{}}
		pom, err := d.read("pom.xml")
		if err != nil {
			return det, false, &ManifestError{File: "pom.xml", Err: err}
		}
		det.Details[DetailPackaging] = "jar"
		if m := packagingRe.FindSubmatch(stripXMLComments(pom)); m != nil {
			det.Details[DetailPackaging] = string(m[1])
		}
		if modulesRe.Match(stripXMLComments(pom)) {
			det.Details[DetailMultiModule] = "true"
		}
		if d.has("mvnw") {
			det.Details[DetailWrapper] = "mvnw"
		}
		return det, true, nil
	}
	if want == "" || want == JavaGradle {
		for _, name := range []string{"build.gradle", "build.gradle.kts"} {
			if !d.has(name) {
				continue
			}
			det := Detection{Language: JavaGradle, Tool: "gradle", DecidedBy: name, Details: map[string]string{}}
			for _, s := range []string{"settings.gradle", "settings.gradle.kts"} {
				if data, err := d.read(s); err == nil && includeRe.Match(data) {
					det.Details[DetailMultiModule] = "true"
				}
			}
			if d.has("gradlew") {
				det.Details[DetailWrapper] = "gradlew"
			}
			return det, true, nil
		}
	}
	if want == "" || want == JavaJar {
		if jar := pickArtifact(d, ".jar"); jar != "" {
			return Detection{Language: JavaJar, Tool: "jar", DecidedBy: jar,
				Details: map[string]string{DetailArtifact: jar}}, true, nil
		}
	}
	if want == "" || want == JavaWar {
		if war := pickArtifact(d, ".war"); war != "" {
			return Detection{Language: JavaWar, Tool: "war", DecidedBy: war,
				Details: map[string]string{DetailArtifact: war}}, true, nil
		}
	}
	if !forced {
		return Detection{}, false, nil
	}
	missing := map[Language]string{
		"":         "pom.xml, build.gradle(.kts), *.jar or *.war",
		JavaMaven:  "pom.xml",
		JavaGradle: "build.gradle or build.gradle.kts",
		JavaJar:    "*.jar file at its top",
		JavaWar:    "*.war file at its top",
	}
	lang := want
	if lang == "" {
		lang = JavaMaven
	}
	return Detection{}, false, &MarkerMissingError{Language: lang, Want: missing[want]}
}

// pickArtifact chooses the file to run among the top-level jars (or wars):
// never sources or javadoc, else the largest, which for Spring Boot is the
// fat jar rather than the "-plain" one.
func pickArtifact(d *dirInfo, ext string) string {
	var candidates []string
	for _, name := range d.withSuffix(ext) {
		lower := strings.ToLower(name)
		if strings.HasSuffix(lower, "-sources"+ext) || strings.HasSuffix(lower, "-javadoc"+ext) {
			continue
		}
		candidates = append(candidates, name)
	}
	size := func(n string) int64 {
		st, err := d.stat(n)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	sort.SliceStable(candidates, func(i, j int) bool { return size(candidates[i]) > size(candidates[j]) })
	if len(candidates) == 0 {
		return ""
	}
	return candidates[0]
}

var xmlCommentRe = regexp.MustCompile(`(?s)<!--.*?-->`)

func stripXMLComments(b []byte) []byte { return xmlCommentRe.ReplaceAll(b, nil) }
