// Package testsample holds small apps in each language berth builds, for
// the end-to-end tests and the build benchmark: each answers "hello from
// LANG" over HTTP on $PORT (berth's plans set it to 5000).
package testsample

// Apps maps a language to its files (path -> content). The Go app takes a
// module from the Go module proxy and the Node.js app a package from npm,
// so that builds download dependencies.
var Apps = map[string]map[string]string{
	"go": {
		"go.mod": "module example.com/hello\n\ngo 1.19\n\nrequire github.com/google/uuid v1.6.0\n",
		"go.sum": "github.com/google/uuid v1.6.0 h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=\n" +
			"github.com/google/uuid v1.6.0/go.mod h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=\n",
		"main.go": `package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/google/uuid"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go %d\n", len(uuid.NewString()))
	})
	http.ListenAndServe(":"+os.Getenv("PORT"), nil)
}
`,
	},
	"node": {
		"package.json": `{"name":"hello","version":"1.0.0","scripts":{"start":"node server.js"},"dependencies":{"ms":"2.1.3"}}` + "\n",
		"package-lock.json": `{
  "name": "hello", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": {"name": "hello", "version": "1.0.0", "dependencies": {"ms": "2.1.3"}},
    "node_modules/ms": {"version": "2.1.3", "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz",
      "integrity": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==", "license": "MIT"}
  }
}
`,
		"server.js": "const ms = require('ms');\nrequire('http').createServer((q, r) => r.end('hello from node ' + ms('1h') + '\\n')).listen(process.env.PORT);\n",
	},
	"python": {
		"requirements.txt": "# the standard library only: PyPI is not reachable here\n",
		"app.py": `import http.server, os

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello from python\n")

http.server.HTTPServer(("", int(os.environ["PORT"])), Hello).serve_forever()
`,
	},
	"static": {"index.html": "hello from static\n"},
}
