package plan

// genPHP serves the code with the runner's Apache (document root
// /var/www/html, port 80). Composer dependencies are installed in a
// builder, without scripts and platform checks: the builder's PHP
// extensions are not the runner's.
func genPHP(g *gen) error {
	runner, err := g.image(PHP, "runner")
	if err != nil {
		return err
	}
	composer := g.det.Details[DetailComposer] == "true"
	if composer {
		builder, err := g.image(PHP, "builder")
		if err != nil {
			return err
		}
		mounts := g.cache("/root/.cache/composer")
		g.from(builder, "build")
		g.line("WORKDIR /app")
		g.line("ENV COMPOSER_ALLOW_SUPERUSER=1 COMPOSER_CACHE_DIR=/root/.cache/composer")
		g.buildEnv()
		g.line("COPY composer.json composer.lock* ./")
		g.line("RUN %s composer install --no-dev --no-interaction --no-progress --no-scripts --no-autoloader --prefer-dist --ignore-platform-reqs", mounts)
		g.line("COPY . .")
		g.line("RUN composer dump-autoload --no-dev --optimize --no-interaction --no-scripts")
	}
	g.port = 80
	g.from(runner, "runtime")
	if composer {
		g.line("COPY --from=build /app /var/www/html")
	} else {
		g.line("COPY . /var/www/html")
	}
	g.runtimeEnv()
	g.expose()
	if g.det.Cmd != "" {
		g.shellCmd(g.det.Cmd)
	}
	return nil
}

// genStatic serves the directory as it is with the static runner, which
// serves /usr/share/nginx/html on port 80 by its own command.
func genStatic(g *gen) error {
	runner, err := g.image(Static, "runner")
	if err != nil {
		return err
	}
	g.ignore = append(g.ignore, "Procfile", "rainbondfile", "Rainbondfile", ".dockerignore")
	return staticSiteRuntime(g, runner, ".")
}

// staticSiteRuntime writes a runner stage that serves src (a COPY source:
// the context, or a --from=build path) with the static runner, which
// serves /usr/share/nginx/html on port 80 by its own command.
func staticSiteRuntime(g *gen, runner, src string) error {
	g.port = 80
	g.from(runner, "runtime")
	g.line("COPY %s /usr/share/nginx/html/", src)
	g.runtimeEnv()
	g.expose()
	return nil
}
