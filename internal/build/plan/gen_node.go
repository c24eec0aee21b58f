package plan

import (
	"strings"
)

// genNode installs dependencies from package.json and the lock file before
// the sources are copied, runs the build script, and starts the app with
// its start script. A project that only builds (a front-end) is served as
// static files instead.
func genNode(g *gen) error {
	d := g.det.Details
	builder, err := g.image(NodeJS, "builder")
	if err != nil {
		return err
	}
	start, static, err := nodeStart(g.det)
	if err != nil {
		return err
	}
	var runner string
	if static {
		runner, err = g.image(Static, "runner")
	} else {
		runner, err = g.image(NodeJS, "runner")
	}
	if err != nil {
		return err
	}
	g.ignore = append(g.ignore, "node_modules")

	tool := g.det.Tool
	berry := d[DetailYarnBerry] == "true"
	lock := d[DetailLockfile]
	var install string
	caches := []string{"/root/.npm"}
	switch tool {
	case "yarn":
		if berry {
			caches = append(caches, "/root/.yarn/berry/cache")
			install = "yarn install"
			if lock != "" {
				install += " --immutable"
			}
		} else {
			caches = append(caches, "/root/.cache/yarn")
			install = "yarn install --non-interactive"
			if lock != "" {
				install += " --frozen-lockfile"
			}
		}
	case "pnpm":
		caches = append(caches, "/root/.cache/pnpm")
		install = "pnpm install --store-dir /root/.cache/pnpm"
		if lock != "" {
			install += " --frozen-lockfile"
		}
	default:
		tool = "npm"
		// npm ci needs a lock file; both official and Debian npm have it.
		install = "npm install"
		if lock == "package-lock.json" || lock == "npm-shrinkwrap.json" {
			install = "npm ci"
		}
	}
	mounts := g.cache(caches...)

	g.from(builder, "build")
	g.line("WORKDIR /app")
	g.line("ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false YARN_CACHE_FOLDER=/root/.cache/yarn")
	g.buildEnv()
	// Debian's nodejs ships npm only, the official image yarn 1 only:
	// install the wanted manager when missing, in a layer of its own.
	if tool != "npm" {
		g.line("RUN %s %s", g.cache("/root/.npm"), installManager(tool, berry, d[DetailPackageManager]))
	}
	// Workspaces, Yarn 2+ (its .yarnrc.yml and releases) and install hooks
	// need more than the manifests: install after copying everything.
	manifestFirst := d[DetailWorkspaces] != "true" && !berry && d[DetailInstallHooks] != "true"
	if manifestFirst {
		files := []string{"package.json"}
		if lock != "" {
			files = append(files, lock)
		}
		files = append(files, ".npmrc*")
		if tool == "yarn" {
			files = append(files, ".yarnrc*")
		}
		g.line("COPY %s ./", strings.Join(files, " "))
		g.line("RUN %s %s", mounts, install)
		g.line("COPY . .")
	} else {
		g.line("COPY . .")
		g.line("RUN %s %s", mounts, install)
	}
	if d[DetailBuildScript] != "" {
		g.line("RUN %s %s run build", mounts, tool)
	}

	if static {
		// The output directory depends on the framework; take the first
		// that the build produced.
		g.line(`RUN for d in dist build out; do if [ -d "$d" ]; then cp -a "$d" /out-site; break; fi; done; ` +
			`[ -d /out-site ] || { echo "berth: the build script produced none of dist/, build/, out/; add a start script to package.json to run a server instead" >&2; exit 1; }`)
		return staticSiteRuntime(g, runner, "--from=build /out-site/")
	}

	g.port = g.choosePort()
	g.from(runner, "runtime")
	g.line("WORKDIR /app")
	g.runtimeEnv("NODE_ENV=production", "NPM_CONFIG_UPDATE_NOTIFIER=false")
	g.line("COPY --from=build /app /app")
	g.expose()
	if g.det.Cmd != "" {
		g.shellCmd(g.det.Cmd)
	} else {
		g.setCmd(start...)
	}
	return nil
}

// nodeStart decides how the app starts, or that it is a static site.
func nodeStart(det Detection) (cmd []string, static bool, err error) {
	d := det.Details
	switch {
	case det.Cmd != "":
		return nil, false, nil
	case d[DetailStartScript] != "" && d[DetailYarnBerry] == "true":
		// Plug'n'Play installs leave no node_modules for npm to use.
		return []string{"yarn", "start"}, false, nil
	case d[DetailStartScript] != "" && d[DetailStartHooks] != "true" && plainNodeScript(d[DetailStartScript]) != "":
		// "node server.js" runs as it is: npm in between costs a second of
		// start-up and does not pass the stop signal on.
		return []string{"node", plainNodeScript(d[DetailStartScript])}, false, nil
	case d[DetailStartScript] != "":
		// npm runs the start script whichever manager installed the
		// dependencies, and the runner is sure to have it.
		return []string{"npm", "start"}, false, nil
	case d[DetailEntry] != "":
		return []string{"node", d[DetailEntry]}, false, nil
	case d[DetailBuildScript] != "":
		return nil, true, nil
	}
	return nil, false, &StartCommandError{Language: NodeJS,
		Looked: []string{"a start script in package.json", "main in package.json", "server.js", "app.js", "index.js", "main.js", "a build script"}}
}

// plainNodeScript is the file of a start script that is only "node FILE"
// (no flags, no shell), or "".
func plainNodeScript(script string) string {
	fields := strings.Fields(script)
	if len(fields) != 2 || fields[0] != "node" || strings.HasPrefix(fields[1], "-") || strings.ContainsAny(fields[1], "$;&|<>`'\"\\") {
		return ""
	}
	return fields[1]
}

// installManager installs yarn or pnpm unless the image has it, at the
// version package.json asks for when it names one.
func installManager(tool string, berry bool, packageManager string) string {
	pkg := tool
	switch tool {
	case "yarn":
		// npm's "yarn" package is Yarn 1, which hands over to the project's
		// own Yarn 2+ release (.yarnrc.yml yarnPath) when there is one.
		pkg = "yarn@1"
	case "pnpm":
		pkg = "pnpm@9"
		if name, version, ok := strings.Cut(packageManager, "@"); ok && name == "pnpm" {
			version, _, _ = strings.Cut(version, "+") // drop the hash corepack adds
			if plainValueRe.MatchString(version) {
				pkg = "pnpm@" + version
			}
		}
	}
	cmd := "command -v " + tool + " >/dev/null 2>&1 || npm install -g " + pkg
	if berry {
		cmd = "if command -v corepack >/dev/null 2>&1; then corepack enable; fi; " + cmd
	}
	return cmd
}
