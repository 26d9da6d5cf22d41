package httpapi

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"
)

// The validate answer, the API's hottest body, is encoded by hand: the
// same bytes as c.JSON writes (encoding/json's field order, HTML-safe
// strings, a final newline; validate_json_test.go compares the two byte
// for byte), without reflection, the encoder's state or the query's
// parsing. Anything this encoder does not write itself (?pretty or any
// other query, echo's debug mode, another serializer, eligible plans, a
// string or number that needs encoding/json's care) goes to c.JSON.

// writeValidate answers 200 with out, as c.JSON(http.StatusOK, out) would.
func writeValidate(c echo.Context, out *validateResponse) error {
	if !plainJSON(c) {
		return c.JSON(http.StatusOK, out)
	}
	bp := validateBuffers.Get().(*[]byte)
	defer validateBuffers.Put(bp)
	b, ok := appendValidate((*bp)[:0], out)
	if !ok {
		return c.JSON(http.StatusOK, out)
	}
	*bp = b
	res := c.Response()
	if res.Header().Get(echo.HeaderContentType) == "" {
		res.Header()[echo.HeaderContentType] = jsonContentType // Set's value, without its allocation
	}
	res.Status = http.StatusOK
	_, err := res.Write(b)
	return err
}

// plainJSON reports whether c.JSON would write compact JSON with
// encoding/json: echo's default serializer, not in debug mode, and no query
// (?pretty indents).
func plainJSON(c echo.Context) bool {
	switch c.Echo().JSONSerializer.(type) {
	case *echo.DefaultJSONSerializer, echo.DefaultJSONSerializer:
	default:
		return false
	}
	return !c.Echo().Debug && c.Request().URL.RawQuery == ""
}

// jsonContentType is the Content-Type header's value of JSON answers,
// shared by every response: never modified (an Add to it copies, its
// capacity being its length).
var jsonContentType = []string{echo.MIMEApplicationJSON}[:1:1]

var validateBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendValidate appends out as json.Encoder encodes it; ok is false when
// it leaves out to encoding/json.
func appendValidate(b []byte, out *validateResponse) (_ []byte, ok bool) {
	if out.EligiblePlans != nil {
		return b, false
	}
	b = append(b, `{"object":`...)
	if b, ok = appendString(b, out.Object); !ok {
		return b, false
	}
	b = append(b, `,"valid":`...)
	b = strconv.AppendBool(b, out.Valid)
	b = append(b, `,"reason":`...)
	if b, ok = appendOptString(b, out.Reason); !ok {
		return b, false
	}
	b = append(b, `,"message":`...)
	if b, ok = appendOptString(b, out.Message); !ok {
		return b, false
	}
	b = append(b, `,"promo_code":`...)
	if p := out.PromoCode; p == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"id":`...)
		if b, ok = appendString(b, p.ID); !ok {
			return b, false
		}
		b = append(b, `,"code":`...)
		if b, ok = appendString(b, p.Code); !ok {
			return b, false
		}
		b = append(b, '}')
	}
	b = append(b, `,"discount":`...)
	if b, ok = appendDiscountTerms(b, out.Discount); !ok {
		return b, false
	}
	b = append(b, `,"preview":`...)
	if p := out.Preview; p == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"currency":`...)
		if b, ok = appendString(b, p.Currency); !ok {
			return b, false
		}
		b = append(b, `,"amount_before":`...)
		b = strconv.AppendInt(b, p.AmountBefore, 10)
		b = append(b, `,"amount_after":`...)
		b = strconv.AppendInt(b, p.AmountAfter, 10)
		b = append(b, `,"discount_amount":`...)
		b = strconv.AppendInt(b, p.DiscountAmount, 10)
		b = append(b, `,"period_start":`...)
		if b, ok = appendString(b, p.PeriodStart); !ok {
			return b, false
		}
		b = append(b, `,"period_end":`...)
		if b, ok = appendString(b, p.PeriodEnd); !ok {
			return b, false
		}
		b = append(b, '}')
	}
	return append(b, `,"eligible_plans":null}`+"\n"...), true
}

func appendDiscountTerms(b []byte, t *discountTerms) (_ []byte, ok bool) {
	if t == nil {
		return append(b, "null"...), true
	}
	b = append(b, `{"promo_type":`...)
	if b, ok = appendString(b, string(t.PromoType)); !ok {
		return b, false
	}
	if t.PercentOff != nil {
		if !plainNumber(string(*t.PercentOff)) {
			return b, false
		}
		b = append(append(b, `,"percent_off":`...), *t.PercentOff...)
	}
	if t.AmountOff != nil {
		b = strconv.AppendInt(append(b, `,"amount_off":`...), *t.AmountOff, 10)
	}
	if t.Currency != nil {
		b = append(b, `,"currency":`...)
		if b, ok = appendString(b, *t.Currency); !ok {
			return b, false
		}
	}
	b = append(b, `,"duration":`...)
	if b, ok = appendString(b, string(t.Duration)); !ok {
		return b, false
	}
	b = append(b, `,"applies_to_cycles":`...)
	if t.AppliesToCycles == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*t.AppliesToCycles), 10)
	}
	return append(b, '}'), true
}

func appendOptString(b []byte, s *string) ([]byte, bool) {
	if s == nil {
		return append(b, "null"...), true
	}
	return appendString(b, *s)
}

// appendString appends s quoted when encoding/json writes it unchanged
// between quotes: printable ASCII without '"', '\\' or the HTML-escaped
// '<', '>' and '&'. ok is false for any other string.
func appendString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return b, false
		}
	}
	return append(append(append(b, '"'), s...), '"'), true
}

// plainNumber reports whether s is digits with at most one '.' between
// digits (a decimal as AmountOffDecimal writes it), which encoding/json
// writes as it is; ok false leaves anything else to encoding/json.
func plainNumber(s string) bool {
	digits, dot := 0, -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && dot < 0 && i > 0 && i < len(s)-1:
			dot = i
		default:
			return false
		}
	}
	if digits == 0 || (len(s) > 1 && s[0] == '0' && s[1] != '.') {
		return false // a leading zero (JSON forbids it)
	}
	return true
}
