package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/bodybuf"
	"github.com/billing-adapter/billing-adapter/internal/jsonerr"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

// decodeJSON reads the request body into dst: one JSON object, no unknown
// fields, nothing after it. Errors are 400s in plain words naming the field
// at fault (param), never Go's own error texts.
func decodeJSON(c echo.Context, dst any) error { return decodeJSONFast(c, dst, nil) }

// decodeJSONFast is decodeJSON with a fast path: fast, when not nil, reads
// the body into dst when it is of a shape it knows (it reports false,
// having changed nothing, for any other body); decodeJSON's decoder reads
// the others, with its errors. fast must read what it accepts as that
// decoder would.
func decodeJSONFast(c echo.Context, dst any, fast func(body []byte) bool) error {
	buf := bodybuf.Get()
	defer bodybuf.Put(buf)
	// No limit here: echo's BodyLimit middleware answers 413 past it.
	body, err := bodybuf.Read(buf, c.Request().Body, c.Request().ContentLength, 0)
	if err != nil {
		return err // the body limit's 413, or the client went away
	}
	// body is not kept: the decoder copies what it keeps.
	if len(bytes.TrimSpace(body)) == 0 {
		return promo.Errorf(promo.CodeInvalidRequest, "request body must be a JSON object")
	}
	if fast != nil && fast(body) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err, dst, "")
	}
	if _, err := dec.Token(); err != io.EOF {
		return promo.Errorf(promo.CodeInvalidRequest, "request body must hold a single JSON object, with nothing after it")
	}
	return nil
}

// jsonError translates a decoding error of dst, the JSON at root ("" for
// the body, else a field's name), into a 400.
func jsonError(err error, dst any, root string) *promo.Error {
	field, msg := jsonerr.Explain(err, dst, root)
	if field == "" {
		return promo.Errorf(promo.CodeInvalidRequest, "request body %s", msg)
	}
	return promo.Invalid(field, "%s", msg)
}

// decimalText is an amount as the caller wrote it, a JSON number or string
// ("5.50", 12.5), kept as text so that it converts exactly (no floats);
// null is empty. The domain judges the text (promo.ParseDecimal), so any
// string gets a message about the amount rather than about JSON.
type decimalText string

func (d *decimalText) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = decimalText(s)
		return nil
	case string(b) == "null":
		*d = ""
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*d = decimalText(b)
		return nil
	}
	return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[decimalText]()}
}

// JSONKind words what decimalText accepts (jsonerr.Kind).
func (decimalText) JSONKind() string {
	return `a decimal number, as a JSON number or string such as 12.5 or "5.50"`
}

// parseTime reads an RFC 3339 timestamp for param.
func parseTime(param, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, promo.Invalid(param, "%s must be an RFC 3339 timestamp such as 2027-01-31T23:59:59Z", param)
	}
	return t.UTC(), nil
}
