package containerd

import (
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// confinement is what every tenant container gets on top of containerd's
// default spec, which already drops to Docker's default capability set and
// masks /proc and /sys paths: containerd's default seccomp profile (it
// follows the capabilities, so it must come after anything that changes
// them) and no-new-privileges, so a setuid binary in an image cannot gain
// what the container was not given.
func confinement() []oci.SpecOpts {
	return []oci.SpecOpts{
		oci.WithNoNewPrivileges,
		seccomp.WithDefaultProfile(),
	}
}
