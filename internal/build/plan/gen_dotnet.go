package plan

import "path"

// genDotNet restores NuGet packages from the project file alone when it can
// (a cached layer), publishes, and runs the assembly with the ASP.NET
// runtime on PORT.
func genDotNet(g *gen) error {
	builder, err := g.image(DotNet, "builder")
	if err != nil {
		return err
	}
	runner, err := g.image(DotNet, "runner")
	if err != nil {
		return err
	}
	d := g.det.Details
	project := d[DetailProject]
	if project == "" {
		return &MarkerMissingError{Language: DotNet, Want: "*.csproj file", ForcedBy: g.det.ForcedBy}
	}
	g.ignore = append(g.ignore, "**/bin", "**/obj")
	mounts := g.cache("/root/.nuget/packages")

	g.from(builder, "build")
	g.line("WORKDIR /src")
	g.line("ENV DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 NUGET_PACKAGES=/root/.nuget/packages")
	g.buildEnv()
	if d[DetailRestoreAll] != "true" {
		dest := "./"
		if dir := path.Dir(project); dir != "." {
			dest = "./" + dir + "/"
		}
		g.line("COPY %s", jsonArray(project, dest))
		g.line("RUN %s dotnet restore %s", mounts, shellQuote(project))
		g.line("COPY . .")
	} else {
		g.line("COPY . .")
		g.line("RUN %s dotnet restore %s", mounts, shellQuote(project))
	}
	g.line("RUN %s dotnet publish %s -c Release -o /out --no-restore", mounts, shellQuote(project))

	g.port = g.choosePort()
	g.from(runner, "runtime")
	g.line("WORKDIR /app")
	g.line("COPY --from=build /out/ /app/")
	g.runtimeEnv("ASPNETCORE_URLS=http://+:" + itoa(g.port))
	g.expose()
	if g.det.Cmd != "" {
		g.shellCmd(g.det.Cmd)
	} else {
		g.setCmd("dotnet", d[DetailAssembly]+".dll")
	}
	return nil
}
