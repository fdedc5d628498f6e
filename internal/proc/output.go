package proc

import (
	"bytes"
	"io"
	"sync"
)

// maxLine is the longest line Lines keeps whole; a longer one is cut into pieces of
// this size, so that a child printing without newlines never grows the buffer.
const maxLine = 64 << 10

// Lines returns a writer that passes every line written to it to w in one Write, with
// prefix in front, and never two lines of writers of the same mu at once (the children
// of one launcher share one mu, so their lines never interleave). Writes may split or
// join lines; the end of a last line without a newline is held until Flush.
func Lines(w io.Writer, prefix string, mu *sync.Mutex) *LineWriter {
	return &LineWriter{w: w, prefix: []byte(prefix), mu: mu}
}

// LineWriter is what Lines returns. It is safe for concurrent use.
type LineWriter struct {
	w      io.Writer
	prefix []byte
	mu     *sync.Mutex // shared with sibling writers: held while writing a line

	pmu     sync.Mutex // guards partial
	partial []byte
}

func (l *LineWriter) Write(p []byte) (int, error) {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			if len(l.partial) >= maxLine {
				l.emit(l.partial[:maxLine])
				l.partial = append(l.partial[:0], l.partial[maxLine:]...)
			}
			break
		}
		line := p[:i]
		if len(l.partial) > 0 {
			line = append(l.partial, line...)
			l.partial = l.partial[:0]
		}
		l.emit(line)
		p = p[i+1:]
	}
	return n, nil
}

// Flush writes a last line that did not end in a newline.
func (l *LineWriter) Flush() {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	if len(l.partial) > 0 {
		l.emit(l.partial)
		l.partial = l.partial[:0]
	}
}

func (l *LineWriter) emit(line []byte) {
	b := make([]byte, 0, len(l.prefix)+len(line)+1)
	b = append(append(append(b, l.prefix...), line...), '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b) // a lost log line must not stop the child
}

// Buffer collects output for a test or an error message: a bytes.Buffer safe for many
// writers (the children's output, a logger) and a reader at once. With Max > 0 it keeps
// only the last Max bytes.
type Buffer struct {
	Max int

	mu  sync.Mutex
	buf []byte
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if b.Max > 0 && len(b.buf) > b.Max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.Max:]...)
	}
	return len(p), nil
}

// String is everything written so far (the last Max bytes of it).
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
