package baseimage

import (
	"fmt"
	"slices"
	"strings"
)

// Roles of a language's two images: the builder compiles or installs
// dependencies, the runner is the smaller image the result runs in
// (berth's plans are multi-stage Dockerfiles: FROM builder, then FROM
// runner with COPY --from).
const (
	RoleBuilder = "builder"
	RoleRunner  = "runner"
)

// spec is one image: the Debian packages added to minbase, what else to
// set up, and a command that proves the toolchain works.
type spec struct {
	packages []string
	// backports adds Suite-backports to apt's sources, for toolchains
	// whose stable version is too old.
	backports bool
	// setup is a shell script run in the root file system after the
	// packages are installed.
	setup string
	// busyboxOnly makes the image of busybox alone (see slimRootfs); the
	// packages must include busybox-static.
	busyboxOnly bool
	// dirs are created in the final root file system.
	dirs []string
	// env is added to the image's configuration besides PATH.
	env []string
	// path is prepended to the standard PATH.
	path []string
	// cmd is the image's default command.
	cmd []string
	// check runs in the root file system; its output (a version) is
	// reported, and its failure fails the image.
	check string
}

// recipe is a language's pair of images.
type recipe struct {
	builder, runner spec
	note            string // said in the progress when the language is prepared
}

const sh = "/bin/sh"

// recipes are what Debian offers per language. Only Debian's packages are
// used: the images are made on machines that reach nothing but a Debian
// mirror (and perhaps the Go module proxy or an npm registry).
var recipes = map[string]recipe{
	"go": {
		note: "Go from " + Suite + "-backports (" + Suite + "'s own 1.19 is older than most go.mod files want); GOTOOLCHAIN=auto fetches a newer toolchain through the Go module proxy when go.mod asks for one",
		builder: spec{
			packages:  []string{"ca-certificates", "git"},
			backports: true,
			// -t: golang-go and its golang-src from backports, the rest
			// from the release.
			setup: "apt-get install -y --no-install-recommends -t " + Suite + "-backports golang-go",
			env:   []string{"CGO_ENABLED=0", "GOPATH=/go", "GOTOOLCHAIN=auto"},
			path:  []string{"/go/bin"},
			check: "go version",
		},
		runner: spec{
			packages: []string{"ca-certificates", "tzdata"},
			check:    "test -s /etc/ssl/certs/ca-certificates.crt && echo ca-certificates ok",
		},
	},
	"node": {
		builder: spec{
			packages: []string{"nodejs", "npm", "ca-certificates", "git"},
			env:      []string{"NPM_CONFIG_UPDATE_NOTIFIER=false", "NPM_CONFIG_FUND=false"},
			check:    "echo node $(node --version) npm $(npm --version)",
		},
		// npm too: plans start apps with `npm start`.
		runner: spec{
			packages: []string{"nodejs", "npm", "ca-certificates", "tzdata"},
			env:      []string{"NODE_ENV=production", "NPM_CONFIG_UPDATE_NOTIFIER=false", "NPM_CONFIG_FUND=false"},
			check:    "echo node $(node --version) npm $(npm --version)",
		},
	},
	"python": {
		// Debian marks its python "externally managed" (PEP 668) and its
		// pip refuses to install outside a virtual environment. In an
		// image nothing else manages it, so PIP_BREAK_SYSTEM_PACKAGES
		// lets a user's `pip install -r requirements.txt` work as with
		// the official python images (berth's plans use --target, which
		// works either way). python-is-python3: Procfiles say "python".
		builder: spec{
			packages: []string{"python3", "python3-pip", "python3-venv", "python-is-python3", "ca-certificates", "git"},
			env:      []string{"PYTHONUNBUFFERED=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_BREAK_SYSTEM_PACKAGES=1"},
			check:    "python --version && python3 -m pip --version && python3 -m venv --help >/dev/null && echo venv ok",
		},
		runner: spec{
			packages: []string{"python3", "python-is-python3", "ca-certificates", "tzdata"},
			env:      []string{"PYTHONUNBUFFERED=1", "PIP_BREAK_SYSTEM_PACKAGES=1"},
			check:    "python --version",
		},
	},
	"java": {
		builder: spec{
			packages: []string{"default-jdk-headless", "maven", "ca-certificates", "git"},
			check:    "javac -version 2>&1 && mvn -B -v 2>&1 | head -1",
		},
		runner: spec{
			packages: []string{"default-jre-headless", "ca-certificates", "tzdata"},
			check:    "java -version 2>&1 | head -1",
		},
	},
	"static": {
		// busybox's httpd serves the files: one static binary, no
		// configuration, MIME types built in. Both images are busybox
		// alone; a site that needs a build step (npm run build) is a
		// node app. The runner serves where and how nginx's official
		// image does (/usr/share/nginx/html, port 80), so plans work
		// with either.
		builder: spec{
			packages:    []string{"busybox-static"},
			busyboxOnly: true,
			check:       "busybox | head -1 && busybox --list | grep -qx httpd",
		},
		runner: spec{
			packages:    []string{"busybox-static"},
			busyboxOnly: true,
			dirs:        []string{"/usr/share/nginx/html"},
			cmd:         []string{"busybox", "httpd", "-f", "-v", "-p", "80", "-h", "/usr/share/nginx/html"},
			check:       "busybox | head -1 && busybox --list | grep -qx httpd",
		},
	},
	"ruby": {
		builder: spec{
			packages: []string{"ruby", "ruby-dev", "bundler", "gcc", "make", "libc6-dev", "ca-certificates", "git"},
			env:      []string{"BUNDLE_SILENCE_ROOT_WARNING=1"},
			check:    "ruby --version && bundle --version",
		},
		runner: spec{
			packages: []string{"ruby", "bundler", "ca-certificates", "tzdata"},
			env:      []string{"BUNDLE_SILENCE_ROOT_WARNING=1"},
			check:    "ruby --version",
		},
	},
	"php": {
		builder: spec{
			packages: []string{"php-cli", "composer", "unzip", "php-curl", "php-mbstring", "php-xml", "php-zip", "ca-certificates", "git"},
			env:      []string{"COMPOSER_ALLOW_SUPERUSER=1"},
			check:    "php --version | head -1 && composer --version 2>/dev/null",
		},
		// Apache with mod_php serving /var/www/html on port 80, like the
		// official php:apache image that plans also work with; its logs
		// go to the container's output.
		runner: spec{
			packages: []string{"apache2", "libapache2-mod-php", "php-cli", "php-curl", "php-mbstring", "php-xml", "php-mysql", "php-pgsql", "ca-certificates", "tzdata"},
			setup: `rm -f /var/www/html/index.html
a2enmod rewrite >/dev/null
ln -sf /dev/stdout /var/log/apache2/access.log
ln -sf /dev/stderr /var/log/apache2/error.log
ln -sf /dev/stdout /var/log/apache2/other_vhosts_access.log`,
			cmd:   []string{"apache2ctl", "-D", "FOREGROUND"},
			check: "php --version | head -1 && apache2ctl -v | head -1",
		},
	},
}

// unsupported are languages berth knows but Debian does not package.
var unsupported = map[string]string{
	"dotnet": "Debian has no .NET SDK package; build .NET apps from a Dockerfile with Microsoft's images",
}

// Languages are the languages Prepare makes images for by default.
func Languages() []string {
	out := make([]string, 0, len(recipes))
	for l := range recipes {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

func recipeFor(lang string) (recipe, error) {
	if r, ok := recipes[lang]; ok {
		return r, nil
	}
	if why, ok := unsupported[lang]; ok {
		return recipe{}, fmt.Errorf("language %s: %s", lang, why)
	}
	return recipe{}, fmt.Errorf("language %q: unknown; want one of %s", lang, strings.Join(Languages(), ", "))
}
