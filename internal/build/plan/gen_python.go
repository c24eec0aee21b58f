package plan

import (
	"strings"
)

// Python packages go to a directory of their own under /app rather than
// into site-packages: Debian's pip refuses system installs (PEP 668) and
// uses a different site directory than the official image, while
// --target plus PYTHONPATH behaves the same on both.
const pythonTarget = "/app/.berth/python"

func genPython(g *gen) error {
	builder, err := g.image(Python, "builder")
	if err != nil {
		return err
	}
	runner, err := g.image(Python, "runner")
	if err != nil {
		return err
	}
	start, err := pythonStart(g.det)
	if err != nil {
		return err
	}
	d := g.det.Details
	g.ignore = append(g.ignore, "__pycache__", ".venv", ".berth")
	mounts := g.cache("/root/.cache/pip")
	pip := "python3 -m pip install --target " + pythonTarget

	g.from(builder, "build")
	g.line("WORKDIR /app")
	g.line("ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1")
	g.buildEnv()
	switch {
	case d[DetailRequirements] != "" && d[DetailLocalRequires] != "true":
		g.line("COPY %s ./", d[DetailRequirements])
		g.line("RUN %s %s -r %s", mounts, pip, d[DetailRequirements])
		g.line("COPY . .")
	case d[DetailRequirements] != "":
		g.line("COPY . .")
		g.line("RUN %s %s -r %s", mounts, pip, d[DetailRequirements])
	case d[DetailRequirementSet] != "":
		// Derived from the lock file at plan time: the layer changes only
		// when the locked versions do.
		var quoted []string
		for _, r := range strings.Split(d[DetailRequirementSet], "\n") {
			quoted = append(quoted, shellQuote(r))
		}
		g.line("RUN %s printf '%%s\\n' %s > /tmp/berth-requirements.txt && %s -r /tmp/berth-requirements.txt",
			mounts, strings.Join(quoted, " "), pip)
		g.line("COPY . .")
	case d[DetailPyProject] == "true":
		g.line("COPY . .")
		g.line("RUN %s %s .", mounts, pip)
	default:
		g.line("COPY . .")
	}

	g.port = g.choosePort()
	g.from(runner, "runtime")
	g.line("WORKDIR /app")
	g.runtimeEnv("PYTHONPATH="+pythonTarget, "PATH="+pythonTarget+"/bin:$PATH", "PYTHONUNBUFFERED=1")
	g.line("COPY --from=build /app /app")
	g.expose()
	g.shellCmd(start)
	return nil
}

func pythonStart(det Detection) (string, error) {
	d := det.Details
	switch {
	case det.Cmd != "":
		return det.Cmd, nil
	case d[DetailDjango] != "" && d[DetailGunicorn] == "true":
		return "gunicorn " + d[DetailDjango] + " --bind 0.0.0.0:$PORT", nil
	case d[DetailDjango] != "":
		return "python3 manage.py runserver 0.0.0.0:$PORT", nil
	case d[DetailEntry] != "":
		return "python3 " + d[DetailEntry], nil
	}
	return "", &StartCommandError{Language: Python,
		Looked: []string{"manage.py", "app.py", "main.py", "server.py", "wsgi.py", "run.py"}}
}
