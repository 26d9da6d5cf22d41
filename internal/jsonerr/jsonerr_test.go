package jsonerr

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

type expandableRef struct{ ID string }

func (x *expandableRef) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &x.ID)
	}
	var obj struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	x.ID = obj.ID
	return nil
}

type money string

func (money) JSONKind() string { return "a decimal number such as 5.50" }

func (m *money) UnmarshalJSON(b []byte) error {
	if b[0] != '"' {
		return &json.UnmarshalTypeError{Value: "number", Type: reflect.TypeFor[money]()}
	}
	return json.Unmarshal(b, (*string)(m))
}

type Embedded struct {
	Livemode bool `json:"livemode"`
}

type line struct {
	Amount   int64         `json:"amount"`
	Discount expandableRef `json:"discount"`
}

type doc struct {
	Embedded
	Code     string            `json:"code"`
	Stock    *int64            `json:"stock"`
	Ratio    float64           `json:"ratio"`
	On       bool              `json:"on"`
	Plans    []string          `json:"plan_ids"`
	Meta     map[string]string `json:"metadata"`
	Customer expandableRef     `json:"customer"`
	Lines    []line            `json:"lines"`
	Amount   money             `json:"amount_off"`
	Number   json.Number       `json:"n"`
	Nested   struct {
		Deep []map[string]int `json:"deep"`
	} `json:"nested"`
}

// Every decode error becomes the field's path and a plain sentence.
func TestExplain(t *testing.T) {
	tests := []struct {
		name, root, in string
		field, msg     string
	}{
		{"string", "", `{"code":5}`, "code", "code must be a string"},
		{"pointer to int", "", `{"stock":"ten"}`, "stock", "stock must be a whole number"},
		{"fraction into int", "", `{"stock":1.5}`, "stock", "stock must be a whole number"},
		{"exponent into int", "", `{"stock":1e3}`, "stock", "stock must be a whole number"},
		{"int out of range", "", `{"stock":99999999999999999999}`, "stock", "stock is out of range"},
		{"negative out of range", "", `{"stock":-99999999999999999999}`, "stock", "stock is out of range"},
		{"float", "", `{"ratio":"x"}`, "ratio", "ratio must be a number"},
		{"float overflow", "", `{"ratio":1e400}`, "ratio", "ratio must be a number"},
		{"bool", "", `{"on":"yes"}`, "on", "on must be true or false"},
		{"array of strings", "", `{"plan_ids":"p"}`, "plan_ids", "plan_ids must be an array of strings"},
		{"array element", "", `{"plan_ids":[5]}`, "plan_ids", "plan_ids must be an array of strings"},
		{"map value", "", `{"metadata":{"a":5}}`, "metadata", "metadata must be an object whose values are strings"},
		{"map itself", "", `{"metadata":[1]}`, "metadata", "metadata must be an object whose values are strings"},
		{"expandable", "", `{"customer":5}`, "customer", "customer must be an ID or an object"},
		{"field in array element", "", `{"lines":[{"amount":"x"}]}`, "lines.amount", "lines.amount must be a whole number"},
		{"expandable in array element", "", `{"lines":[{"discount":true}]}`, "lines.discount", "lines.discount must be an ID or an object"},
		{"array of objects", "", `{"lines":{}}`, "lines", "lines must be an array of objects"},
		{"a Kind", "", `{"amount_off":5}`, "amount_off", "amount_off must be a decimal number such as 5.50"},
		{"json.Number", "", `{"n":"abc"}`, "", "has a value that cannot be read"},
		{"promoted field", "", `{"livemode":"no"}`, "livemode", "livemode must be true or false"},
		{"deep", "", `{"nested":{"deep":[{"a":"x"}]}}`, "nested.deep", "nested.deep must be an array of objects"},
		{"case-folded name", "", `{"CODE":5}`, "code", "code must be a string"},
		{"unknown field", "", `{"bogus":1}`, "bogus", `unknown field "bogus"`},
		{"an array document", "", `[]`, "", "must be a JSON object"},
		{"a string document", "", `"x"`, "", "must be a JSON object"},
		{"syntax", "", `{"code":}`, "", "is not valid JSON (at byte 9)"},
		{"truncated", "", `{"code":"A`, "", "is truncated JSON"},
		{"empty", "", ``, "", "is truncated JSON"},

		{"rooted field", "data.object", `{"customer":5}`, "data.object.customer", "data.object.customer must be an ID or an object"},
		{"rooted document", "data.object", `5`, "data.object", "data.object must be an object"},
		{"rooted unknown field", "data.object", `{"x":1}`, "data.object.x", `unknown field "data.object.x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := &doc{}
			dec := json.NewDecoder(bytes.NewReader([]byte(tt.in)))
			dec.DisallowUnknownFields()
			err := dec.Decode(dst)
			if err == nil {
				t.Fatal("decoded without error")
			}
			field, msg := Explain(err, dst, tt.root)
			if field != tt.field || msg != tt.msg {
				t.Fatalf("Explain(%v) = %q, %q; want %q, %q", err, field, msg, tt.field, tt.msg)
			}
			for _, bad := range []string{"json:", "Go ", "unmarshal", "int64", "struct", "jsonerr", "expandableRef", "[]", "map["} {
				if strings.Contains(msg, bad) {
					t.Fatalf("message %q shows Go internals (%q)", msg, bad)
				}
			}
		})
	}
}

// Other destinations: a map for the whole body, one field decoded alone.
func TestExplainOtherDestinations(t *testing.T) {
	var m map[string]json.RawMessage
	if field, msg := Explain(json.Unmarshal([]byte(`[1]`), &m), &m, ""); field != "" || msg != "must be a JSON object" {
		t.Errorf("array into a map: %q %q", field, msg)
	}
	var n int64
	if field, msg := Explain(json.Unmarshal([]byte(`"x"`), &n), &n, "stock"); field != "stock" || msg != "stock must be a whole number" {
		t.Errorf("one field: %q %q", field, msg)
	}
	var md map[string]*string
	if field, msg := Explain(json.Unmarshal([]byte(`{"a":1}`), &md), &md, "metadata"); field != "metadata" ||
		msg != "metadata must be an object whose values are strings" {
		t.Errorf("one map field: %q %q", field, msg)
	}
}
