package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

// decodeJSON reads the request body into dst: one JSON object, no unknown
// fields, nothing after it. Errors are 400s naming the field at fault.
func decodeJSON(c echo.Context, dst any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return promo.Errorf(promo.CodeInvalidRequest, "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return promo.Errorf(promo.CodeInvalidRequest, "request body must hold a single JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return promo.Errorf(promo.CodeInvalidRequest, "request body must be a JSON object")
		}
		return promo.Invalid(field, "%s must be %s", field, jsonTypeName(typeErr.Type.String()))
	case errors.As(err, &syntaxErr):
		return promo.Errorf(promo.CodeInvalidRequest, "request body is not valid JSON (at byte %d)", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return promo.Invalid(field, "unknown field %q", field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return promo.Errorf(promo.CodeInvalidRequest, "request body is truncated JSON")
	}
	return promo.Errorf(promo.CodeInvalidRequest, "request body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonTypeName(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "an integer"
	case goType == "bool" || goType == "*bool":
		return "true or false"
	case strings.Contains(goType, "map"):
		return "an object of strings"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "Number"):
		return "a number"
	}
	return "a string"
}

// parseTime reads an RFC 3339 timestamp for param.
func parseTime(param, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, promo.Invalid(param, "%s must be an RFC 3339 timestamp such as 2027-01-31T23:59:59Z", param)
	}
	return t.UTC(), nil
}
