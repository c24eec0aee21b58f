package api

import (
	_ "embed"
	"net/http"
)

// openapiDoc is the API's OpenAPI 3 document, kept by hand beside the
// routes; TestOpenAPIMatchesRoutes keeps the two in step.
//
//go:embed openapi.json
var openapiDoc []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapiDoc)
}
