package webhooks

import (
	"encoding/json"
	"testing"
)

// expandableID reads a string ID as json.Unmarshal into a string does,
// whether or not the string takes plainString's short way.
func TestExpandableIDStringIsJSONUnmarshal(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		short    bool // read by plainString, without json.Unmarshal
	}{
		{"an ID", `"cus_NffrFeUfNV2Hib"`, true},
		{"empty", `""`, true},
		{"UTF-8", `"sub_é€😀"`, true},
		{"an escaped quote", `"a\"b"`, false},
		{"a unicode escape", `"cus_\u00e9"`, false},
		{"a surrogate pair", `"\ud83d\ude00"`, false},
		{"a lone surrogate", `"\ud83d"`, false},
		{"an escaped slash", `"a\/b"`, false},
		{"invalid UTF-8", "\"cus_\xff\xfe\"", false},
		{"a truncated rune", "\"cus_\xe2\x82\"", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want string
			if err := json.Unmarshal([]byte(tc.in), &want); err != nil {
				t.Fatal(err)
			}
			if _, ok := plainString([]byte(tc.in)); ok != tc.short {
				t.Fatalf("plainString ok %v, want %v", ok, tc.short)
			}
			var got expandableID
			if err := got.UnmarshalJSON([]byte(tc.in)); err != nil || got.ID != want {
				t.Fatalf("got %q %v, want %q", got.ID, err, want)
			}
			// Inside an object, as an invoice carries it.
			var in struct {
				Customer expandableID `json:"customer"`
			}
			if err := json.Unmarshal([]byte(`{"customer":`+tc.in+`}`), &in); err != nil || in.Customer.ID != want {
				t.Fatalf("in an object: got %q %v, want %q", in.Customer.ID, err, want)
			}
		})
	}
}

// Any JSON string reads the same through expandableID as through
// json.Unmarshal.
func FuzzExpandableIDString(f *testing.F) {
	for _, s := range []string{`"cus_1"`, `""`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", `"\ud83d"`, `"é"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var want string
		if json.Unmarshal([]byte(in), &want) != nil {
			return // not a JSON string: never handed to UnmarshalJSON as one
		}
		if len(in) == 0 || in[0] != '"' {
			return
		}
		var got expandableID
		if err := got.UnmarshalJSON([]byte(in)); err != nil || got.ID != want {
			t.Fatalf("%q: got %q %v, want %q", in, got.ID, err, want)
		}
	})
}
