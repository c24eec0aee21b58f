package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-platform/berth/internal/build/source"
	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/worker"
)

// maxChunk bounds one PATCH of an upload; clients send larger files in
// several chunks (and resume from the offset after a broken one).
const maxChunk = 64 << 20

// build builds a source component (from its repository, its image, or
// an upload) into a new version and deploys it.
func (a *API) build(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in struct {
		UploadID string `json:"upload_id"`
	}
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	if c.Kind != model.KindSource {
		return conflict("%s is a %s component; only source components are built (deploy it instead)", c.Alias, c.Kind)
	}
	if !a.building() {
		return conflict("this berth server does not build: it runs without BuildKit (start it with the containerd runtime, or point --buildkit-address at a buildkitd)")
	}
	if c.Source.Type == model.SourcePackage {
		if in.UploadID == "" {
			return invalidField("upload_id", "is required for a package source: upload the package first (POST .../uploads)")
		}
		ups, err := a.cfg.Builds.Uploads(c.ID)
		if err != nil {
			return err
		}
		up, err := ups.Status(in.UploadID)
		if err != nil {
			return invalidField("upload_id", "no upload %q on component %s", in.UploadID, c.Alias)
		}
		if up.Offset != up.Size {
			return conflict("upload %s has %d of %d bytes; send the rest (PATCH with Upload-Offset: %d) before building", up.ID, up.Offset, up.Size, up.Offset)
		}
	}
	id, err := a.enqueue(r, c, worker.TaskBuild, worker.BuildTask{ComponentID: c.ID, UploadID: in.UploadID},
		fmt.Sprintf("build of %s accepted by %s; queued", c.Alias, principalName(r)))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"event_id": id})
	return nil
}

// uploadsOf finds the upload area of a package component.
func (a *API) uploadsOf(r *http.Request) (*model.Component, *source.Uploads, error) {
	c, err := a.componentAccess(r, model.RoleDeveloper)
	if err != nil {
		return nil, nil, err
	}
	if c.Kind != model.KindSource || c.Source == nil || c.Source.Type != model.SourcePackage {
		return nil, nil, conflict("%s does not build from a package; create it with source {\"type\": \"package\"} to upload one", c.Alias)
	}
	if !a.building() {
		return nil, nil, conflict("this berth server does not build: it runs without BuildKit")
	}
	ups, err := a.cfg.Builds.Uploads(c.ID)
	return c, ups, err
}

// createUpload starts a resumable upload: name, size and optionally the
// sha256 the complete file must have.
func (a *API) createUpload(w http.ResponseWriter, r *http.Request) error {
	_, ups, err := a.uploadsOf(r)
	if err != nil {
		return err
	}
	var in struct {
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	up, err := ups.Create(in.Name, in.Size, in.SHA256)
	if err != nil {
		return uploadError(err)
	}
	writeJSON(w, http.StatusCreated, up)
	return nil
}

// getUpload tells how much of an upload arrived: where to resume.
func (a *API) getUpload(w http.ResponseWriter, r *http.Request) error {
	_, ups, err := a.uploadsOf(r)
	if err != nil {
		return err
	}
	up, err := ups.Status(r.PathValue("upload"))
	if err != nil {
		return uploadError(err)
	}
	w.Header().Set("Upload-Offset", strconv.FormatInt(up.Offset, 10))
	writeJSON(w, http.StatusOK, up)
	return nil
}

// appendUpload takes the next chunk at Upload-Offset (the tus protocol's
// way): a chunk at the wrong offset is refused with the right one.
func (a *API) appendUpload(w http.ResponseWriter, r *http.Request) error {
	_, ups, err := a.uploadsOf(r)
	if err != nil {
		return err
	}
	offset, err := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
	if err != nil || offset < 0 {
		return badRequest("header Upload-Offset must be the byte offset of this chunk (GET the upload for where to resume)")
	}
	body := http.MaxBytesReader(w, r.Body, maxChunk)
	next, err := ups.Append(r.PathValue("upload"), offset, body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		// What arrived is kept; the client resumes from there.
		w.Header().Set("Upload-Offset", strconv.FormatInt(next, 10))
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "a chunk may have at most %d bytes; send the rest from offset %d", maxChunk, next)
	}
	if err != nil {
		return uploadError(err)
	}
	w.Header().Set("Upload-Offset", strconv.FormatInt(next, 10))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func uploadError(err error) error {
	var off *source.OffsetMismatchError
	var big *source.UploadTooLargeError
	var incomplete *source.UploadIncompleteError
	var sum *source.ChecksumError
	var verr *model.ValidationError
	switch {
	case errors.As(err, &off):
		return conflict("%v", err)
	case errors.As(err, &big):
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "%v", err)
	case errors.As(err, &incomplete), errors.As(err, &sum):
		return conflict("%v", err)
	case errors.Is(err, model.ErrNotFound):
		return notFound("%v", err)
	case errors.As(err, &verr):
		return err
	case errors.Is(err, source.ErrUploadComplete):
		return conflict("%v", err)
	}
	return err
}

// cancelEvent stops the task of a running event (a build, most often).
func (a *API) cancelEvent(w http.ResponseWriter, r *http.Request) error {
	ev, err := a.eventAccess(r)
	if err != nil {
		return err
	}
	if p := principalFrom(r.Context()); !p.Admin && !p.Role.AtLeast(model.RoleDeveloper) {
		return forbidden("cancelling needs role developer or higher; the token has role %s", p.Role)
	}
	if ev.Status != model.EventRunning {
		return conflict("event %s is %s; only a running event can be cancelled", ev.ID, ev.Status)
	}
	if a.cfg.Cancel == nil || !a.cfg.Cancel(ev.ID) {
		return conflict("event %s is not running on this berth server (queued, or on another server); try again in a moment", ev.ID)
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"event_id": ev.ID})
	return nil
}

// building reports whether builds can be taken (BuildKit is up).
func (a *API) building() bool { return a.cfg.Builds != nil && a.cfg.Builds.Uploads != nil }
