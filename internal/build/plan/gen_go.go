package plan

// genGo builds a static binary: CGO off, so the runner may be any Debian
// (or the builder image itself) without a matching libc. Dependencies are
// downloaded from go.mod/go.sum alone, so a source change reuses that layer.
func genGo(g *gen) error {
	builder, err := g.image(Go, "builder")
	if err != nil {
		return err
	}
	runner, err := g.image(Go, "runner")
	if err != nil {
		return err
	}
	d := g.det.Details
	mainPkg := d[DetailGoMain]
	if mainPkg == "" {
		mainPkg = "."
	}
	bin := goBinaryName(d[DetailGoModule], mainPkg)
	// -mod=mod lets go fix a go.sum that lags behind go.mod instead of
	// failing; a vendored module builds from vendor/ with no network.
	modFlag := "-mod=mod"
	if d[DetailGoVendor] == "true" {
		modFlag = "-mod=vendor"
	}
	mounts := g.cache("/go/pkg/mod", "/root/.cache/go-build")

	g.from(builder, "build")
	g.line("WORKDIR /src")
	// GOPATH is fixed so the cache mounts hit on the official image
	// (GOPATH=/go) and on Debian's golang-go (GOPATH=$HOME/go) alike. The
	// official image pins GOTOOLCHAIN=local; auto lets a go.mod that needs
	// a newer Go fetch it through GOPROXY (into the cached module cache)
	// instead of failing.
	g.line("ENV GOPATH=/go GOMODCACHE=/go/pkg/mod GOCACHE=/root/.cache/go-build CGO_ENABLED=0 GOTOOLCHAIN=auto GOFLAGS=%s", modFlag)
	g.buildEnv()
	if d[DetailGoVendor] != "true" && d[DetailGoLocalReplace] != "true" {
		g.line("COPY go.mod go.sum* ./")
		g.line("RUN %s go mod download", mounts)
	}
	g.line("COPY . .")
	g.line(`RUN %s go build -trimpath -ldflags="-s -w" -o /out/bin/%s %s`, mounts, bin, shellQuote(mainPkg))
	// The runner may lack CA certificates (debian:bookworm-slim does);
	// carry the builder's, if it has them, for the app's HTTPS calls.
	g.line("RUN mkdir -p /out/certs && if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt /out/certs/; fi")

	g.port = g.choosePort()
	g.from(runner, "runtime")
	g.line("WORKDIR /app")
	g.line("COPY --from=build /out/certs/ /etc/ssl/certs/")
	g.line("COPY --from=build /out/bin/ /app/bin/")
	g.runtimeEnv("PATH=/app/bin:$PATH")
	g.expose()
	if g.det.Cmd != "" {
		g.shellCmd(g.det.Cmd)
	} else {
		g.setCmd("/app/bin/" + bin)
	}
	return nil
}
