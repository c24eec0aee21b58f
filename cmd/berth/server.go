package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-platform/berth/internal/server"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newServerCmd() *cobra.Command {
	cfg := server.Config{}
	var logLevel string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the all-in-one berth server (API, console, worker)",
		Long: `Run the all-in-one berth server. It starts each part in phases and prints
them with the time each took, then the console URL and where the admin token is.
A phase that fails stops the server with a line naming the log to read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Runtime != "containerd" && cfg.Runtime != "none" {
				return fmt.Errorf("--runtime must be containerd or none (got %q)", cfg.Runtime)
			}
			if err := cfg.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level must be debug, info, warn or error (got %q)", logLevel)
			}
			cfg.Out = cmd.OutOrStdout()
			cmd.SilenceUsage = true
			// main's context ends on SIGINT and SIGTERM.
			return server.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", envOr("BERTH_DATA", "/var/lib/berth"), "data directory (env BERTH_DATA)")
	f.StringVar(&cfg.Listen, "listen", envOr("BERTH_LISTEN", ":7070"), "address of the API and console (env BERTH_LISTEN)")
	f.StringVar(&cfg.Database, "database", envOr("BERTH_DATABASE", ""), "postgres://... for PostgreSQL (HA); default SQLite in the data directory (env BERTH_DATABASE)")
	f.StringVar(&cfg.TCPPorts, "tcp-ports", envOr("BERTH_TCP_PORTS", "30000-30010"), "gateway port range for TCP rules, LO-HI")
	f.StringVar(&cfg.HTTPAddr, "http", envOr("BERTH_HTTP", ":80"), "gateway address for HTTP (and h2c); \"\" turns the gateway's HTTP off (env BERTH_HTTP)")
	f.StringVar(&cfg.HTTPSAddr, "https", envOr("BERTH_HTTPS", ":443"), "gateway address for HTTPS; \"\" turns it off (env BERTH_HTTPS)")
	f.StringVar(&cfg.Domain, "domain", envOr("BERTH_DOMAIN", ""), "base domain of default domains <component>-<port>-<team>.BASE (default <machine IP>.nip.io)")
	f.StringVar(&cfg.ACMEDirectory, "acme-directory", envOr("BERTH_ACME_DIRECTORY", "https://acme-v02.api.letsencrypt.org/directory"), "ACME directory URL for automatic certificates")
	f.StringVar(&cfg.ACMEEmail, "acme-email", envOr("BERTH_ACME_EMAIL", ""), "contact e-mail of the ACME account")
	f.StringVar(&cfg.BuildKitAddress, "buildkit-address", envOr("BERTH_BUILDKIT_ADDRESS", ""), "use this buildkitd (unix:///run/buildkit/buildkitd.sock, tcp://...) instead of starting one")
	f.StringVar(&cfg.Registry, "registry", envOr("BERTH_REGISTRY", ""), "push builds to this registry (host[/prefix]; credentials from BERTH_REGISTRY_USERNAME/PASSWORD) instead of berth's hub")
	f.IntVar(&cfg.KeepVersions, "keep-versions", 5, "versions kept per component (older ones and their images are collected)")
	f.DurationVar(&cfg.BuildTimeout, "build-timeout", 30*time.Minute, "default time limit of a build")
	f.StringVar(&cfg.ImageMirror, "image-mirror", envOr("BERTH_IMAGE_MIRROR", ""), "registry mirror prefix for the official base images (e.g. mirror.example.com/library)")
	f.StringArrayVar(&cfg.RegistryMirrors, "registry-mirror", nil, "pull a registry's images through a mirror in builds, HOST=MIRROR (repeatable; e.g. docker.io=mirror.example.com for a Dockerfile's FROM)")
	f.StringArrayVar(&cfg.BaseImages, "base-image", nil, "builder and runner image of a language, LANG=BUILDER[,RUNNER] (repeatable; default the official images, or the hub's offline ones once prepared)")
	f.StringVar(&cfg.BuildCA, "build-ca", "", "PEM bundle builds trust when they download (default the host's /etc/ssl/certs/ca-certificates.crt)")
	f.StringArrayVar(&cfg.BuildEnv, "build-env", nil, "NAME=value every build gets (repeatable); GOPROXY, NPM_CONFIG_REGISTRY... are passed from berth's environment too")
	f.Int64Var(&cfg.UploadMax, "upload-max", 2<<30, "largest uploaded package in bytes")
	f.StringVar(&cfg.BaseImagesDir, "base-images-dir", "", "where `berth images prepare` keeps its Debian root file systems (default DATA/baseimages)")
	f.StringVar(&cfg.ACMECA, "acme-ca", envOr("BERTH_ACME_CA", ""), "PEM file of extra CAs to trust for the ACME directory (a private ACME server)")
	f.IntVar(&cfg.Workers, "workers", 4, "tasks run at once")
	f.StringVar(&logLevel, "log-level", "info", "server log level: debug, info, warn, error")
	f.BoolVar(&cfg.ResetAdminToken, "reset-admin-token", false, "issue a new admin token (DATA/admin-token) and revoke the old one")
	f.StringVar(&cfg.Runtime, "runtime", envOr("BERTH_RUNTIME", "containerd"), "engine that runs components: containerd, or none for the API alone")
	f.StringVar(&cfg.Containerd.Address, "containerd-address", "", "socket of a running containerd to use instead of starting one")
	f.StringVar(&cfg.Containerd.Namespace, "containerd-namespace", "berth", "containerd namespace of berth's containers")
	f.StringVar(&cfg.Containerd.Bridge, "bridge", "berth0", "bridge the instances are attached to")
	f.StringVar(&cfg.Containerd.Subnet, "subnet", "10.213.0.0/16", "instance addresses (must not overlap the machine's networks)")
	f.StringVar(&cfg.Containerd.ServiceLink, "service-link", "berth-svc", "interface that holds the components' service addresses")
	f.StringVar(&cfg.Containerd.ServiceSubnet, "service-subnet", "10.214.0.0/16", "components' stable service addresses")
	f.StringVar(&cfg.Containerd.UserNS, "userns", envOr("BERTH_USERNS", "auto"), "user namespaces for instances: auto (when the kernel can, saying so at start), on (refuse to start without), off (root in a container is host root; a machine that runs only its owner's code)")
	f.StringVar(&cfg.BuildNetwork, "build-network", envOr("BERTH_BUILD_NETWORK", "isolated"), "network of RUN steps in berth's buildkitd: isolated (own bridge, no way to the host or instances) or host")
	f.StringVar(&cfg.BuildBridge, "build-bridge", "", "bridge of the isolated build network (default the instance bridge's name + \"bk\")")
	f.StringVar(&cfg.BuildSubnet, "build-subnet", "", "IPv4 range of the isolated build network (default a free /24 of 10.215.0.0/16)")
	f.StringArrayVar(&cfg.AllowEndpointCIDRs, "allow-endpoint-cidr", nil, "range that thirdparty endpoints, rules, git sources and image registries may name although it is the host's or berth's own, e.g. 127.0.0.0/8 (repeatable; env BERTH_ALLOW_ENDPOINT_CIDR, comma-separated)")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", envOr("BERTH_METRICS_LISTEN", ""), "serve /metrics without a token on this address only (on the API address it needs the admin token)")
	f.BoolVar(&cfg.RotateSecretKey, "rotate-secret-key", false, "re-encrypt the stored secrets with a new DATA/secret.key at start (stop other servers of the same database first)")
	f.IntVar(&cfg.GatewayMaxConns, "gateway-max-conns", 10000, "most client connections the gateway keeps at once")
	f.DurationVar(&cfg.GatewayHeaderTimeout, "gateway-header-timeout", 30*time.Second, "longest wait for a request's head on the gateway")
	f.DurationVar(&cfg.GatewayIdleTimeout, "gateway-idle-timeout", 75*time.Second, "how long the gateway keeps an idle kept-alive connection")
	f.DurationVar(&cfg.ReadyTimeout, "ready-timeout", 5*time.Minute, "how long a new version may take to become ready before the deploy fails (and rolls back)")
	f.DurationVar(&cfg.TaskStepDelay, "debug-task-delay", 0, "pause between task steps (tests of crash recovery)")
	_ = f.MarkHidden("debug-task-delay")
	return cmd
}
