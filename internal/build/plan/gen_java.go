package plan

import (
	"fmt"
	"strings"
)

// javaCmd starts a jar the way Rainbond's Java buildpack does: PORT as
// Spring Boot's server.port, JAVA_OPTS for memory and the like.
const javaCmd = "exec java -Dserver.port=$PORT $JAVA_OPTS -jar /app/app.jar"

// pickArtifactScript copies the largest runnable artifact matching globs to
// dest, skipping sources, javadoc, test and "plain" jars and the original
// of a repackaged one; it fails with a message naming where it looked.
func pickArtifactScript(dest string, globs ...string) string {
	return fmt.Sprintf(`mkdir -p /out && found=$(ls -S %s 2>/dev/null | grep -v -e '-sources\.[jw]ar$' -e '-javadoc\.jar$' -e '-tests\.jar$' -e '/original-' -e '-plain\.jar$' | head -n 1) && `+
		`if [ -z "$found" ]; then echo "berth: the build produced no %s" >&2; exit 1; fi && cp "$found" %s`,
		strings.Join(globs, " "), strings.Join(globs, " or "), dest)
}

func genMaven(g *gen) error {
	builder, err := g.image(JavaMaven, "builder")
	if err != nil {
		return err
	}
	war := g.det.Details[DetailPackaging] == "war"
	var runner string
	if war {
		runner, err = g.image(JavaWar, "runner")
	} else {
		runner, err = g.image(JavaMaven, "runner")
	}
	if err != nil {
		return err
	}
	mounts := g.cache("/root/.m2")
	mvn := "mvn -B"

	g.from(builder, "build")
	g.line("WORKDIR /src")
	g.buildEnv()
	if g.hasBuildEnv("MAVEN_MIRROR_URL") {
		// A settings file outside /root/.m2, which the cache mount hides.
		g.line(`RUN printf '<settings><mirrors><mirror><id>berth</id><mirrorOf>*</mirrorOf><url>%%s</url></mirror></mirrors></settings>' "$MAVEN_MIRROR_URL" > /usr/local/etc/berth-maven-settings.xml`)
		mvn += " -s /usr/local/etc/berth-maven-settings.xml"
	}
	// The image's mvn, not the project's mvnw: the wrapper downloads Maven
	// itself, which offline builders cannot.
	if g.det.Details[DetailMultiModule] != "true" {
		g.line("COPY pom.xml ./")
		// go-offline fails on some plugin setups; the package step then
		// downloads what is missing and reports real errors itself.
		g.line("RUN %s %s -q dependency:go-offline -DskipTests || true", mounts, mvn)
	}
	g.line("COPY . .")
	if war {
		g.line("RUN %s %s -DskipTests package && %s", mounts, mvn, pickArtifactScript("/out/app.war", "target/*.war", "*/target/*.war"))
		return javaWarRuntime(g, runner, "--from=build /out/app.war")
	}
	g.line("RUN %s %s -DskipTests package && %s", mounts, mvn, pickArtifactScript("/out/app.jar", "target/*.jar", "*/target/*.jar"))
	return javaJarRuntime(g, runner, "--from=build /out/app.jar")
}

func genGradle(g *gen) error {
	builder, err := g.image(JavaGradle, "builder")
	if err != nil {
		return err
	}
	runner, err := g.image(JavaGradle, "runner")
	if err != nil {
		return err
	}
	mounts := g.cache("/root/.gradle")
	g.from(builder, "build")
	g.line("WORKDIR /src")
	g.line("ENV GRADLE_USER_HOME=/root/.gradle")
	g.buildEnv()
	g.line("COPY . .")
	// The image's gradle when it has one (no download), else the wrapper.
	g.line(`RUN %s if command -v gradle >/dev/null 2>&1; then gradle --no-daemon -x test build; else chmod +x gradlew && ./gradlew --no-daemon -x test build; fi && %s`,
		mounts, pickArtifactScript("/out/app.jar", "build/libs/*.jar", "*/build/libs/*.jar"))
	return javaJarRuntime(g, runner, "--from=build /out/app.jar")
}

// genJavaPackage runs an uploaded jar or war as it is: no builder stage.
func genJavaPackage(g *gen) error {
	lang := g.det.Language
	runner, err := g.image(lang, "runner")
	if err != nil {
		return err
	}
	artifact := g.det.Details[DetailArtifact]
	if artifact == "" {
		return &MarkerMissingError{Language: lang, Want: "*." + string(lang[5:]) + " file at its top", ForcedBy: g.det.ForcedBy}
	}
	if lang == JavaWar {
		return javaWarRuntime(g, runner, jsonArray(artifact, "/usr/local/tomcat/webapps/ROOT.war"))
	}
	return javaJarRuntime(g, runner, jsonArray(artifact, "/app/app.jar"))
}

// javaJarRuntime writes the runner stage; src is what COPY takes before
// the destination (a --from=build path), or a full JSON-form COPY operand.
func javaJarRuntime(g *gen, runner, src string) error {
	g.port = g.choosePort()
	g.from(runner, "runtime")
	g.line("WORKDIR /app")
	copyArtifact(g, src, "/app/app.jar")
	g.runtimeEnv()
	g.expose()
	if g.det.Cmd != "" {
		g.shellCmd(g.det.Cmd)
	} else {
		g.setCmd("sh", "-c", javaCmd)
	}
	return nil
}

// javaWarRuntime deploys the war as Tomcat's root application; Tomcat
// listens on 8080 and starts by the image's own command.
func javaWarRuntime(g *gen, runner, src string) error {
	g.port = 8080
	g.from(runner, "runtime")
	copyArtifact(g, src, "/usr/local/tomcat/webapps/ROOT.war")
	g.runtimeEnv()
	g.expose()
	if g.det.Cmd != "" {
		g.shellCmd(g.det.Cmd)
	}
	return nil
}

// copyArtifact copies the built or uploaded artifact to dest; src is a
// --from=build path, or a JSON-form COPY operand (an uploaded file's name
// may hold spaces) that already names dest.
func copyArtifact(g *gen, src, dest string) {
	if strings.HasPrefix(src, "[") {
		g.line("COPY %s", src)
		return
	}
	g.line("COPY %s %s", src, dest)
}
