package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// decodeValidateSlow is decodeJSON's decoder on a validate body, without
// the echo context: what parseValidateRequest must agree with.
func decodeValidateSlow(body []byte) (validateRequest, bool) {
	var r validateRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return r, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return r, false
	}
	return r, true
}

// The validate request's fast path reads what encoding/json reads, and
// leaves everything else (errors included) to it untouched.
func TestParseValidateRequestIsTheDecoders(t *testing.T) {
	fast := []string{
		`{}`,
		` { } `,
		`{"code":"HOTCODE","customer":"cus_1"}`,
		`{"code":"hotcode","customer":"cus_1","price":"price_1","subscription":"sub_1"}`,
		"\t{\r\n \"code\" : \"A B\" ,\n\"customer\":\"\"}\n",
		`{"code":"A","code":"B"}`, // the last wins, as in encoding/json
		`{"code":"<&>'!~"}`,
	}
	slow := []string{
		``, `   `, `{`, `}`, `[]`, `null`, `"x"`, `1`,
		`{"code":"A",}`, `{,"code":"A"}`, `{"code":"A"`, `{"code" "A"}`, `{"code":}`,
		`{"code":"A"} {}`, `{"code":"A"}x`, `{"code":"A"}}`,
		`{"code":null}`, `{"code":1}`, `{"code":true}`, `{"code":["A"]}`, `{"code":{"a":"b"}}`,
		`{"Code":"A"}`, `{"CODE":"A"}`, `{"codes":"A"}`, `{"other":"A"}`, `{"":"A"}`,
		`{"code":"A\"B"}`, `{"code":"A\\nB"}`, `{"code":"\u00e9"}`, "{\"code\":\"é\"}", "{\"code\":\"A\tB\"}",
		"{\"code\":\"\x7f\"}", "{\"code\":\"\xff\"}",
		`{"code":"A","customer":"B","price":"C","subscription":"D","x":"E"}`,
		"\v{}", "{}\f",
	}
	for _, body := range fast {
		var got validateRequest
		if !parseValidateRequest([]byte(body), &got) {
			t.Errorf("%q: not read by the fast path", body)
			continue
		}
		want, ok := decodeValidateSlow([]byte(body))
		if !ok || got != want {
			t.Errorf("%q: fast path read %+v, the decoder %+v (ok %v)", body, got, want, ok)
		}
	}
	for _, body := range slow {
		got := validateRequest{Code: "unchanged"}
		if parseValidateRequest([]byte(body), &got) {
			t.Errorf("%q: read by the fast path (%+v), want it left to the decoder", body, got)
		}
		if got != (validateRequest{Code: "unchanged"}) {
			t.Errorf("%q: fast path changed the request to %+v", body, got)
		}
	}
}

func BenchmarkParseValidateRequest(b *testing.B) {
	body := []byte(`{"code":"hotcode","customer":"cus_000123","price":"price_1"}`)
	b.ReportAllocs()
	for b.Loop() {
		var r validateRequest
		if !parseValidateRequest(body, &r) {
			b.Fatal("not read")
		}
	}
}

// FuzzParseValidateRequest: whatever the body, the fast path either leaves
// it to the decoder, the request untouched, or reads what the decoder reads.
func FuzzParseValidateRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"code":"A","customer":"cus_1"}`, `{"code":"A","code":"B"}`, `{"Code":"A"}`,
		`{"code":null}`, `{"code":"A"} x`, " {\"price\" :\"p\"}\n", `{"code":"\u0041"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got := validateRequest{Code: "unchanged"}
		if !parseValidateRequest(body, &got) {
			if got != (validateRequest{Code: "unchanged"}) {
				t.Fatalf("%q: left to the decoder but changed to %+v", body, got)
			}
			return
		}
		var fast validateRequest // as the handler's, zero
		parseValidateRequest(body, &fast)
		want, ok := decodeValidateSlow(body)
		if !ok || fast != want {
			t.Fatalf("%q: fast path read %+v, the decoder %+v (ok %v)", body, fast, want, ok)
		}
	})
}
