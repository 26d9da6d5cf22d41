package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPIDocument is the OpenAPI 3.1 description of the whole HTTP API,
// served at GET /openapi.json. It is written by hand and held to the code by
// tests: openapi_test.go compares its paths and methods with the registered
// routes and its error codes with errorStatus, and the end-to-end suite
// (cmd/billing-adapter) validates every response it receives against it.
//
//go:embed openapi.json
var OpenAPIDocument []byte

func serveOpenAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, OpenAPIDocument)
}
