package stripesim

import (
	"encoding/json"
	"hash/maphash"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
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

// jsonAppender is a value that writes its own JSON (directInvoice), the
// bytes its MarshalJSON gives.
type jsonAppender interface {
	appendJSONTo(b []byte) []byte
	MarshalJSON() ([]byte, error)
}

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
	case jsonAppender:
		return x.appendJSONTo(b), nil
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
	if len(m) < minKeyOrder {
		out, _, err := appendJSONFields(b, m, slices.Sorted(maps.Keys(m)), value)
		return out, err
	}
	h := keySetHash(m)
	known := false
	if ko, _ := keyOrders.Load(h); ko != nil {
		known = true
		out, ok, err := appendJSONFields(b, m, ko.([]string), value)
		if ok || err != nil {
			return out, err
		}
		b = out[:len(b)] // another key set with this hash: sorted, as below
	}
	keys := slices.Sorted(maps.Keys(m))
	if known || keyOrderN.Load() < maxKeyOrders {
		if _, loaded := keyOrders.Swap(h, keys); !loaded {
			keyOrderN.Add(1)
		}
	}
	out, _, err := appendJSONFields(b, m, keys, value)
	return out, err
}

// The render functions build maps of a few fixed key sets over and over
// (an invoice of ~80 keys, each of its lines ~25, a price, a plan...), and
// sorting the keys was most of the encoding. keyOrders keeps the sorted keys
// of each key set met, by keySetHash: a map with exactly those keys (as
// many, each present) is written in that order without sorting; any other
// (a hash collision) is sorted. At most maxKeyOrders sets are kept (keys of
// metadata are the caller's, so their sets are not bounded); a set that
// replaces another of the same hash does not count. Maps of fewer than
// minKeyOrder keys are sorted (cheap).
var (
	keyOrders  sync.Map // uint64 -> []string (sorted; never modified)
	keyOrderN  atomic.Int64
	keySetSeed = maphash.MakeSeed()
)

const (
	maxKeyOrders = 4096
	minKeyOrder  = 4
)

// keySetHash is the same for maps with the same keys, whatever the order
// of iteration.
func keySetHash[V any](m map[string]V) uint64 {
	h := uint64(len(m)) * 0x9e3779b97f4a7c15
	for k := range m {
		h += maphash.String(keySetSeed, k)
	}
	return h
}

// appendJSONFields writes {"k":v,...} for keys in that order. ok is false
// (b partly written) when keys are not m's keys: a key not in m, or not as
// many.
func appendJSONFields[V any](b []byte, m map[string]V, keys []string, value func([]byte, V) ([]byte, error)) (_ []byte, ok bool, _ error) {
	if len(keys) != len(m) {
		return b, false, nil
	}
	b = append(b, '{')
	var err error
	for i, k := range keys {
		v, ok := m[k]
		if !ok {
			return b, false, nil
		}
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendJSONString(b, k); err != nil {
			return nil, true, err
		}
		b = append(b, ':')
		if b, err = value(b, v); err != nil {
			return nil, true, err
		}
	}
	return append(b, '}'), true, nil
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
