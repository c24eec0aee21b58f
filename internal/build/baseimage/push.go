package baseimage

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// stdPath is Debian's PATH for root.
const stdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// WorkingDir is the images' working directory, where plans put the
// application.
const WorkingDir = "/app"

// assemble makes the OCI image of a layer file. Its times are the
// layer's, not the push's: pushing a reused layer again gives the same
// digest, so builds that start FROM it keep their cache.
func assemble(layerPath, lang, role string, s spec, version string, made time.Time) (v1.Image, error) {
	layer, err := tarball.LayerFromFile(layerPath, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", layerPath, err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	created := made.UTC().Truncate(time.Second)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: fmt.Sprintf("berth images prepare: debootstrap --variant=minbase %s; apt-get install --no-install-recommends %s", Suite, strings.Join(s.packages, " ")),
			Comment:   version,
		},
	})
	if err != nil {
		return nil, err
	}
	path := stdPath
	if len(s.path) > 0 {
		path = strings.Join(s.path, ":") + ":" + stdPath
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: created}
	cf.Config.Env = append([]string{"PATH=" + path, "LANG=C.UTF-8"}, s.env...)
	cf.Config.WorkingDir = WorkingDir
	cf.Config.Cmd = s.cmd
	if len(cf.Config.Cmd) == 0 {
		cf.Config.Cmd = []string{"/bin/bash"}
	}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "berth base-" + lang + "-" + role,
		"org.opencontainers.image.description": version,
		"org.opencontainers.image.base.name":   "debian:" + Suite + " (minbase)",
		"io.berth.base.language":               lang,
		"io.berth.base.role":                   role,
	}
	return mutate.ConfigFile(img, cf)
}

// push assembles the image and pushes it under every tag.
func (p *preparer) push(ctx context.Context, img Image, layerPath string, s spec, made time.Time) (Image, error) {
	oci, err := assemble(layerPath, img.Language, img.Role, s, img.Version, made)
	if err != nil {
		return img, err
	}
	d, err := oci.Digest()
	if err != nil {
		return img, err
	}
	layers, err := oci.Layers()
	if err != nil {
		return img, err
	}
	if img.Size, err = layers[0].Size(); err != nil {
		return img, err
	}
	img.Digest = d.String()
	repo := Repository(p.opt.Registry, img.Language, img.Role)
	var nameOpts []name.Option
	if p.opt.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	var auth authn.Authenticator = authn.Anonymous
	if p.opt.Auth != nil {
		auth = &authn.Basic{Username: p.opt.Auth.Username, Password: p.opt.Auth.Password}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth)}
	start := time.Now()
	for i, tag := range Tags {
		ref, err := name.NewTag(repo+":"+tag, nameOpts...)
		if err != nil {
			return img, fmt.Errorf("image name %s:%s: %w", repo, tag, err)
		}
		if i == 0 {
			p.progress("%s-%s: pushing %s (%s)", img.Language, img.Role, ref, mb(img.Size))
			err = remote.Write(ref, oci, opts...)
		} else {
			err = remote.Tag(ref, oci, opts...)
		}
		if err != nil {
			return img, fmt.Errorf("push %s: %w", ref, err)
		}
		img.Refs = append(img.Refs, ref.String())
	}
	p.progress("%s-%s: pushed %s in %s", img.Language, img.Role, img.Digest, time.Since(start).Round(time.Millisecond))
	return img, nil
}
