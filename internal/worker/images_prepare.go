package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-platform/berth/internal/build/baseimage"
	"github.com/berth-platform/berth/internal/model"
)

// TaskImagesPrepare builds the offline base images into the registry.
const TaskImagesPrepare = "images_prepare"

// ImagesPrepareTask is its payload.
type ImagesPrepareTask struct {
	Languages []string `json:"languages,omitempty"`
	Rebuild   bool     `json:"rebuild,omitempty"`
}

// ImagesTarget is the event target of base image work.
const ImagesTarget = "images:base"

// prepareImages runs `berth images prepare`.
func (b *Builds) prepareImages(ctx context.Context, t *model.Task, log *TaskLog) error {
	var p ImagesPrepareTask
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return &Failure{Reason: "BadTask", Err: fmt.Errorf("read task: %w", err)}
	}
	log.Printf("prepare", "Preparing offline base images from Debian's packages into %s", b.Registry.Prefix)
	images, err := baseimage.Prepare(ctx, baseimage.Options{
		Registry: b.Registry.Prefix, Auth: &baseimage.Auth{Username: b.Registry.Username, Password: b.Registry.Password},
		Insecure: b.Registry.PlainHTTP, Languages: p.Languages, WorkDir: b.BaseImagesDir, Rebuild: p.Rebuild,
		Progress: func(line string) { log.Printf("prepare", "%s", line) },
	})
	if err != nil {
		return &Failure{Reason: "PrepareFailed", Err: err}
	}
	for _, img := range images {
		log.Printf("prepare", "%s %s: %s (%s)", img.Language, img.Role, img.Refs[0], img.Version)
	}
	log.Printf("prepare", "%d base image(s) ready; builds of these languages need no internet now", len(images))
	return nil
}
