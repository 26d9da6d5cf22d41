// Package jsonerr turns the errors of encoding/json into plain sentences for
// API callers: the field at fault as a dotted path, what it must be, and
// none of Go's internals (no "json:" prefix, Go type or struct names).
// The HTTP API and the webhook receiver both decode with it.
package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Kind is implemented by types that decode JSON of their own and describe
// what they accept ("a decimal number such as 5.50").
type Kind interface {
	JSONKind() string
}

// Explain translates err, returned by decoding JSON into dst, for the
// document at path root ("" for a request body, "data.object" for an
// event's object). When a field is at fault it returns the field's dotted
// path and a sentence that starts with it ("data.object.customer must be an
// ID or an object"). When the document as a whole is at fault (only
// possible with root ""), field is "" and msg completes a sentence about
// the document: "is not valid JSON (at byte 12)", "must be a JSON object".
func Explain(err error, dst any, root string) (field, msg string) {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		t, path := fieldType(reflect.TypeOf(dst), typeErr.Field)
		if t == nil {
			t = typeErr.Type
		}
		field = join(root, path)
		if field == "" {
			return "", "must be " + withJSON(describe(t))
		}
		if isInt(t) && strings.HasPrefix(typeErr.Value, "number ") && isInteger(strings.TrimPrefix(typeErr.Value, "number ")) {
			return field, field + " is out of range"
		}
		return field, field + " must be " + describe(t)
	case errors.As(err, &syntaxErr):
		return document(root, fmt.Sprintf("is not valid JSON (at byte %d)", syntaxErr.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return document(root, "is truncated JSON")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field = join(root, strings.Trim(name, `"`))
		return field, fmt.Sprintf("unknown field %q", field)
	}
	return document(root, "has a value that cannot be read")
}

// document words a problem of the whole document: a field's when the
// document is one (root).
func document(root, problem string) (string, string) {
	if root == "" {
		return "", problem
	}
	return root, root + " " + problem
}

func join(root, field string) string {
	switch {
	case root == "":
		return field
	case field == "":
		return root
	}
	return root + "." + field
}

// withJSON says "a JSON object" rather than "an object ..." of a whole
// document (the fields' own types are the fields' messages).
func withJSON(kind string) string {
	switch {
	case strings.HasPrefix(kind, "an object"):
		return "a JSON object"
	case strings.HasPrefix(kind, "an array"):
		return "a JSON array"
	}
	return kind
}

var (
	numberType      = reflect.TypeFor[json.Number]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	kindType        = reflect.TypeFor[Kind]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// fieldType follows a dotted path of field names from t (through pointers,
// arrays and map values, whose indexes and keys the path omits) and returns
// the type there and the path as the JSON has it (without the Go names of
// embedded structs). The type is nil when the path leads nowhere.
func fieldType(t reflect.Type, path string) (reflect.Type, string) {
	if t == nil {
		return nil, path
	}
	t = deref(t)
	if path == "" {
		return t, ""
	}
	var names []string
	for name := range strings.SplitSeq(path, ".") {
		t = containerElem(t)
		if t.Kind() != reflect.Struct {
			return nil, path
		}
		f, ok := structField(t, name)
		if !ok {
			return nil, path
		}
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); !f.Anonymous || tag != "" {
			names = append(names, name) // not an embedded struct's Go name
		}
		t = deref(f.Type)
	}
	return t, strings.Join(names, ".")
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// containerElem is the element type of arrays and maps (nested ones too).
func containerElem(t reflect.Type) reflect.Type {
	for {
		switch t.Kind() {
		case reflect.Slice, reflect.Array, reflect.Map:
			if t == rawMessageType {
				return t
			}
			t = deref(t.Elem())
		default:
			return t
		}
	}
}

// structField finds the field encoding/json decodes name into: by its JSON
// name (exactly, then ignoring case), or an embedded struct by its Go name
// (the path names those when the field is promoted from them).
func structField(t reflect.Type, name string) (reflect.StructField, bool) {
	var folded *reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			if f.Name == name {
				return f, true
			}
			if et := deref(f.Type); et.Kind() == reflect.Struct {
				if sf, ok := structField(et, name); ok {
					return sf, true
				}
			}
			continue
		}
		jsonName := tag
		if jsonName == "" {
			jsonName = f.Name
		}
		if jsonName == name {
			return f, true
		}
		if folded == nil && strings.EqualFold(jsonName, name) {
			folded = &f
		}
	}
	if folded != nil {
		return *folded, true
	}
	return reflect.StructField{}, false
}

// describe says in plain words what JSON a Go type accepts.
func describe(t reflect.Type) string {
	t = deref(t)
	if t.Implements(kindType) {
		return reflect.Zero(t).Interface().(Kind).JSONKind()
	}
	if reflect.PointerTo(t).Implements(kindType) {
		return reflect.New(t).Interface().(Kind).JSONKind()
	}
	switch t {
	case numberType:
		return "a number"
	case rawMessageType:
		return "JSON"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array of " + plural(t.Elem())
	case reflect.Map:
		return "an object whose values are " + plural(t.Elem())
	case reflect.Struct:
		if expandable(t) {
			return "an ID or an object"
		}
		return "an object"
	}
	return "a JSON value"
}

// plural names the values of a type in the plural.
func plural(t reflect.Type) string {
	switch d := describe(t); {
	case d == "an ID or an object":
		return "IDs or objects"
	case strings.HasPrefix(d, "an array"):
		return "arrays"
	case strings.HasPrefix(d, "an object"):
		return "objects"
	case d == "a string":
		return "strings"
	case d == "a whole number":
		return "whole numbers"
	case d == "a number":
		return "numbers"
	default:
		return d // "true or false", JSON, a Kind's own words
	}
}

// expandable reports a Stripe-style expandable field: an object with an ID
// that decodes itself, so that an ID string is accepted too.
func expandable(t reflect.Type) bool {
	f, ok := t.FieldByName("ID")
	return ok && f.Type.Kind() == reflect.String && reflect.PointerTo(t).Implements(unmarshalerType)
}

func isInt(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch deref(t).Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// isInteger reports JSON number text without fraction or exponent.
func isInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
