package bodybuf

import (
	"bytes"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name          string
		body          string
		length, limit int64
		want          string
	}{
		{name: "no limit, known length", body: "abc", length: 3, want: "abc"},
		{name: "no limit, unknown length", body: "abcdef", length: -1, want: "abcdef"},
		{name: "under the limit", body: "abc", length: 3, limit: 5, want: "abc"},
		{name: "over the limit: limit+1 bytes", body: "abcdefgh", length: 8, limit: 5, want: "abcdef"},
		{name: "over the limit, length not said", body: "abcdefgh", length: -1, limit: 5, want: "abcdef"},
		{name: "a length that lies short", body: "abcdef", length: 2, want: "abcdef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := Get()
			defer Put(buf)
			got, err := Read(buf, strings.NewReader(tc.body), tc.length, tc.limit)
			if err != nil || string(got) != tc.want {
				t.Fatalf("Read = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestPutKeepsOnlySmallBuffers(t *testing.T) {
	big := bytes.NewBuffer(make([]byte, 0, MaxPooled+1))
	big.WriteString("x")
	Put(big)
	if big.Len() != 1 {
		t.Fatal("a buffer over MaxPooled was reset and pooled")
	}
	small := new(bytes.Buffer)
	small.WriteString("x")
	Put(small)
	if small.Len() != 0 {
		t.Fatal("a small buffer was not reset before it was pooled")
	}
}
