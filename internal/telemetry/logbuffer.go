package telemetry

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logBufferLimit is how many bytes of log lines a LogBuffer holds before it
// writes them at once, whatever the interval.
const logBufferLimit = 64 << 10

// LogBuffer holds the service's log lines for up to an interval and writes
// them together: under load, one write system call carries many lines
// instead of one each (LOG_FLUSH_INTERVAL). Lines keep their order and are
// never split: each Write (slog writes one whole line per call) is copied
// in whole, and one lock covers both the copying and the writing.
//
// Lines wait at most the interval, or until 64 KiB are held, or until a line
// of level WARN or above is logged through FlushAbove, or Close. A line
// still held when the process dies without Close (a kill -9, a fatal
// runtime error) is lost: at most the interval's worth.
type LogBuffer struct {
	w        io.Writer
	interval time.Duration

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer // armed while buf holds lines
	closed bool
}

// NewLogBuffer writes to w. An interval of 0 or less writes each line at
// once, as w itself would.
func NewLogBuffer(w io.Writer, interval time.Duration) *LogBuffer {
	return &LogBuffer{w: w, interval: interval}
}

// Write holds p (one log line) until the next flush. It never fails: a
// write error of the flush is the underlying writer's, not the line's.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.interval <= 0 || b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > logBufferLimit {
		b.flushLocked()
		if len(p) > logBufferLimit {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	if b.timer == nil {
		b.timer = time.AfterFunc(b.interval, b.Flush)
	} else if len(b.buf) == len(p) { // the first line since the last flush
		b.timer.Reset(b.interval)
	}
	return len(p), nil
}

// Flush writes the lines held now.
func (b *LogBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *LogBuffer) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	_, _ = b.w.Write(b.buf) // as slog's own handlers, a failed log write is not the caller's error
	b.buf = b.buf[:0]
	if b.timer != nil {
		b.timer.Stop()
	}
}

// Close writes the lines held and makes every later line go out at once.
func (b *LogBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	b.closed = true
	return nil
}

// FlushAbove returns h with every record of level WARN or above written out
// at once, with the lines held before it: a warning or an error is never
// left waiting for the interval.
func FlushAbove(h slog.Handler, b *LogBuffer) slog.Handler {
	return flushAbove{Handler: h, buf: b}
}

type flushAbove struct {
	slog.Handler
	buf *LogBuffer
}

func (f flushAbove) Handle(ctx context.Context, r slog.Record) error {
	err := f.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		f.buf.Flush()
	}
	return err
}

func (f flushAbove) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushAbove{Handler: f.Handler.WithAttrs(attrs), buf: f.buf}
}

func (f flushAbove) WithGroup(name string) slog.Handler {
	return flushAbove{Handler: f.Handler.WithGroup(name), buf: f.buf}
}
