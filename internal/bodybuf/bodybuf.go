// Package bodybuf reads HTTP request bodies into pooled buffers, for the
// API's JSON requests (internal/httpapi) and Stripe's webhook deliveries
// (webhooks): io.ReadAll would grow a new buffer step by step for every
// request, allocating about four times the body.
package bodybuf

import (
	"bytes"
	"io"
	"sync"
)

// MaxPooled bounds what the pool keeps: a buffer grown past it (a rare large
// body) is left to the GC rather than pinned in the pool.
const MaxPooled = 64 << 10

var pool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Get returns an empty buffer; give it back with Put once nothing refers to
// its bytes any more.
func Get() *bytes.Buffer { return pool.Get().(*bytes.Buffer) }

// Put returns b to the pool, unless it grew past MaxPooled.
func Put(b *bytes.Buffer) {
	if b.Cap() > MaxPooled {
		return
	}
	b.Reset()
	pool.Put(b)
}

// Read reads body into buf and returns its bytes (valid until buf is
// reused). With limit > 0 it reads at most limit+1 bytes, so a caller sees
// a body over the limit by its length. A known length (up to limit, or up to
// MaxPooled without a limit) grows buf once to hold the whole body and the
// read that sees EOF.
func Read(buf *bytes.Buffer, body io.Reader, length, limit int64) ([]byte, error) {
	room := int64(MaxPooled)
	if limit > 0 {
		room = limit
		body = io.LimitReader(body, limit+1)
	}
	if length > 0 && length <= room {
		buf.Grow(int(length) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}
