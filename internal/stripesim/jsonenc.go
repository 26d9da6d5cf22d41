package stripesim

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
)

// marshalJSON encodes a rendered object (map[string]any of strings,
// integers, booleans, nil, nested maps and slices) exactly as json.Marshal
// does, byte for byte, without reflection: map keys sorted, HTML characters
// escaped. It is what the simulator spends most of its time on (every event
// snapshots its object, every answer and list page is encoded), so its
// common cases are written out here; any other value (floats, structs,
// strings needing escapes, json.Marshaler) goes through json.Marshal
// itself, so the output never differs.
func marshalJSON(v any) ([]byte, error) {
	return appendJSON(make([]byte, 0, 1024), v)
}

// preEncoded is JSON this package encoded (marshalJSON), compact and
// escaped as json.Marshal leaves it: appendJSON writes it as it is, and
// json.Marshal (through MarshalJSON) gives the same bytes.
type preEncoded []byte

func (p preEncoded) MarshalJSON() ([]byte, error) { return p, nil }

func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x)
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case preEncoded:
		return append(b, x...), nil
	case map[string]any:
		return appendJSONObject(b, x, appendJSON)
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		var err error
		for i, el := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, el); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]string:
		return appendJSONObject(b, x, appendJSONString)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, out...), nil
}

// appendJSONObject writes m as json.Marshal does (null when nil, keys
// sorted), each value with value.
func appendJSONObject[V any](b []byte, m map[string]V, value func([]byte, V) ([]byte, error)) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	var err error
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendJSONString(b, k); err != nil {
			return nil, err
		}
		b = append(b, ':')
		if b, err = value(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendJSONString writes a string json.Marshal would write unchanged
// between quotes (printable ASCII other than `"`, `\`, `<`, `>`, `&`) as
// it is, and any other through json.Marshal.
func appendJSONString(b []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			out, err := json.Marshal(s)
			if err != nil {
				return nil, err
			}
			return append(b, out...), nil
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}
