package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3 document of the API, served at
// GET /api/v1/openapi.json. openapi_test.go checks it against Routes and
// against the handlers' answers.
//
//go:embed openapi.json
var openAPIDoc []byte

// serveOpenAPI answers the OpenAPI document; it needs no token.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "max-age=300")
	writeBody(w, http.StatusOK, openAPIDoc)
}
