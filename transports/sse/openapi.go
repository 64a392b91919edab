package sse

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 description of the transport's endpoints.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI is GET /api/v1/openapi.json.
func (t *Transport) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, openAPI)
}
