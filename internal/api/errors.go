package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/berth-platform/berth/internal/model"
)

// Error is an API error: an HTTP status, a stable code for scripts and a
// message for people that says what is wrong and how to fix it.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "bad_request", format, args...)
}

func notFound(format string, args ...any) *Error {
	return errorf(http.StatusNotFound, "not_found", format, args...)
}

func conflict(format string, args ...any) *Error {
	return errorf(http.StatusConflict, "conflict", format, args...)
}

func forbidden(format string, args ...any) *Error {
	return errorf(http.StatusForbidden, "forbidden", format, args...)
}

func invalidField(field, format string, args ...any) *Error {
	return errorf(http.StatusUnprocessableEntity, "invalid", "%s: %s", field, fmt.Sprintf(format, args...))
}

// writeError maps err to a response. Store errors that reach here unwrapped
// by a handler still get the right status from their sentinel.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var apiErr *Error
	var verr *model.ValidationError
	switch {
	case errors.As(err, &apiErr):
	case errors.As(err, &verr):
		apiErr = errorf(http.StatusUnprocessableEntity, "invalid", "%s", verr.Error())
	case errors.Is(err, model.ErrNotFound):
		apiErr = notFound("%s", err.Error())
	case errors.Is(err, model.ErrConflict), errors.Is(err, model.ErrStale):
		apiErr = conflict("%s", err.Error())
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		return
	default:
		slog.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		apiErr = errorf(http.StatusInternalServerError, "internal", "internal error: %v", err)
	}
	writeJSON(w, apiErr.Status, map[string]any{"error": map[string]string{"code": apiErr.Code, "message": apiErr.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// maxBody bounds JSON request bodies; certificates are the largest.
const maxBody = 1 << 20

// decode reads a JSON body strictly: unknown fields are typos the user wants
// to hear about.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		var syntaxErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxErr):
			return errorf(http.StatusRequestEntityTooLarge, "too_large", "request body is larger than %d bytes", maxBody)
		case errors.As(err, &syntaxErr):
			return badRequest("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
		case errors.As(err, &typeErr):
			return badRequest("field %q must be %s, not a JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
		case err.Error() == "EOF":
			return badRequest("request body is empty; send a JSON object")
		default:
			return badRequest("malformed JSON: %v", err)
		}
	}
	if dec.More() {
		return badRequest("request body has data after the JSON object")
	}
	return nil
}

// decodeOptional is decode for bodies that may be empty.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	err := decode(w, r, v)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Message == "request body is empty; send a JSON object" {
		return nil
	}
	return err
}
