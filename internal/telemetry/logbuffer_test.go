package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records each write it gets, and signals it.
type sink struct {
	mu     sync.Mutex
	writes []string
	wrote  chan struct{}
}

func newSink() *sink { return &sink{wrote: make(chan struct{}, 1000)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.writes = append(s.writes, string(p))
	s.mu.Unlock()
	s.wrote <- struct{}{}
	return len(p), nil
}

func (s *sink) text() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.writes, ""), len(s.writes)
}

func TestLogBuffer(t *testing.T) {
	t.Run("lines wait for the interval, then go out in one write, in order", func(t *testing.T) {
		out := newSink()
		b := NewLogBuffer(out, 20*time.Millisecond)
		start := time.Now()
		for i := range 3 {
			fmt.Fprintf(b, "line %d\n", i)
		}
		if got, n := out.text(); n != 0 {
			t.Fatalf("written before the interval: %q", got)
		}
		<-out.wrote
		if waited := time.Since(start); waited < 20*time.Millisecond {
			t.Fatalf("written after %v, before the interval", waited)
		}
		if got, n := out.text(); n != 1 || got != "line 0\nline 1\nline 2\n" {
			t.Fatalf("%d writes %q", n, got)
		}
		fmt.Fprintf(b, "line 3\n") // a line after a flush arms the timer again
		<-out.wrote
		if got, n := out.text(); n != 2 || !strings.HasSuffix(got, "line 3\n") {
			t.Fatalf("%d writes %q", n, got)
		}
	})
	t.Run("interval 0 writes each line at once", func(t *testing.T) {
		out := newSink()
		b := NewLogBuffer(out, 0)
		fmt.Fprintf(b, "a\n")
		fmt.Fprintf(b, "b\n")
		if got, n := out.text(); n != 2 || got != "a\nb\n" {
			t.Fatalf("%d writes %q", n, got)
		}
	})
	t.Run("64 KiB of lines go out without waiting", func(t *testing.T) {
		out := newSink()
		b := NewLogBuffer(out, time.Hour)
		line := strings.Repeat("x", 1023) + "\n"
		for range logBufferLimit / len(line) {
			b.Write([]byte(line))
		}
		if _, n := out.text(); n != 0 {
			t.Fatalf("%d writes before the limit", n)
		}
		b.Write([]byte(line))
		if got, n := out.text(); n != 1 || len(got) != logBufferLimit {
			t.Fatalf("%d writes of %d bytes, want the 64 KiB held", n, len(got))
		}
		big := strings.Repeat("y", logBufferLimit+1) + "\n"
		b.Write([]byte(big))
		if got, n := out.text(); n != 3 || !strings.HasSuffix(got, line+big) {
			t.Fatalf("a line over the limit: %d writes, want the held line then it", n)
		}
	})
	t.Run("a warning goes out at once, after the lines before it", func(t *testing.T) {
		out := newSink()
		b := NewLogBuffer(out, time.Hour)
		log := slog.New(FlushAbove(slog.NewJSONHandler(b, nil), b)).With("svc", "x").WithGroup("g")
		log.Info("first")
		log.Debug("hidden")
		if _, n := out.text(); n != 0 {
			t.Fatalf("an info line was written at once")
		}
		log.Warn("second", "k", 1)
		got, n := out.text()
		if n != 1 || !strings.Contains(got, `"msg":"first"`) || strings.Index(got, `"first"`) > strings.Index(got, `"second"`) ||
			!strings.Contains(got, `"svc":"x","g":{"k":1}`) {
			t.Fatalf("%d writes %q", n, got)
		}
		log.Error("third")
		if got, n := out.text(); n != 2 || !strings.Contains(got, `"third"`) {
			t.Fatalf("an error line waited: %d writes %q", n, got)
		}
	})
	t.Run("close writes what is held, and every later line at once", func(t *testing.T) {
		out := newSink()
		b := NewLogBuffer(out, time.Hour)
		fmt.Fprintf(b, "held\n")
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(b, "late\n")
		if got, n := out.text(); n != 2 || got != "held\nlate\n" {
			t.Fatalf("%d writes %q", n, got)
		}
	})
}

// Lines logged from many goroutines come out whole, each once.
func TestLogBufferConcurrentLinesAreWhole(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	b := NewLogBuffer(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}), time.Millisecond)
	log := slog.New(FlushAbove(slog.NewJSONHandler(b, nil), b))
	const goroutines, lines = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range lines {
				if i%100 == 99 {
					log.Warn("line", "g", g, "i", i)
				} else {
					log.Info("line", "g", g, "i", i)
				}
			}
		})
	}
	wg.Wait()
	b.Close()
	seen := map[string]bool{}
	for l := range strings.SplitSeq(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var rec struct{ G, I int }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("a line is not whole: %q: %v", l, err)
		}
		key := fmt.Sprint(rec.G, ".", rec.I)
		if seen[key] {
			t.Fatalf("line %s twice", key)
		}
		seen[key] = true
	}
	if len(seen) != goroutines*lines {
		t.Fatalf("%d lines, want %d", len(seen), goroutines*lines)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
