package plan

// genRuby installs gems with Bundler into the application directory, so the
// runner needs only Ruby, and starts a Rack app with rackup unless the user
// says otherwise.
func genRuby(g *gen) error {
	builder, err := g.image(Ruby, "builder")
	if err != nil {
		return err
	}
	runner, err := g.image(Ruby, "runner")
	if err != nil {
		return err
	}
	cmd := g.det.Cmd
	if cmd == "" {
		if g.det.Details[DetailRack] != "true" {
			return &StartCommandError{Language: Ruby, Looked: []string{"config.ru"}}
		}
		cmd = "bundle exec rackup --host 0.0.0.0 --port $PORT"
	}
	g.ignore = append(g.ignore, ".bundle", "vendor/bundle")
	bundle := "BUNDLE_PATH=/app/vendor/bundle BUNDLE_WITHOUT=development:test"

	g.from(builder, "build")
	g.line("WORKDIR /app")
	g.line("ENV %s BUNDLE_USER_CACHE=/root/.cache/bundle BUNDLE_GLOBAL_GEM_CACHE=true", bundle)
	g.buildEnv()
	g.line("COPY Gemfile Gemfile.lock* ./")
	g.line("RUN %s bundle install --jobs 4", g.cache("/root/.cache/bundle"))
	g.line("COPY . .")

	g.port = g.choosePort()
	g.from(runner, "runtime")
	g.line("WORKDIR /app")
	g.runtimeEnv(bundle, "RACK_ENV=production", "RAILS_ENV=production")
	g.line("COPY --from=build /app /app")
	g.expose()
	g.shellCmd(cmd)
	return nil
}
