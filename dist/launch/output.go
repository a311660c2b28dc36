package launch

import (
	"bufio"
	"io"
	"sync"
)

// lockedWriter serialises whole lines from several workers onto one stream.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) writeLine(prefix string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, prefix)
	l.w.Write(line)
	io.WriteString(l.w, "\n")
}

// copyLines copies r line by line to w with a prefix, keeping the last
// lines in t when t is not nil. Over-long lines are split, never dropped.
func copyLines(r io.Reader, w *lockedWriter, prefix string, t *tail) {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadSlice('\n')
		if n := len(line); n > 0 {
			if line[n-1] == '\n' {
				line = line[:n-1]
			}
			w.writeLine(prefix, line)
			if t != nil {
				t.add(string(line))
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// tail keeps the last n lines written to it.
type tail struct {
	mu  sync.Mutex
	n   int
	buf []string
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, line)
	if len(t.buf) > t.n {
		t.buf = t.buf[len(t.buf)-t.n:]
	}
}

func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.buf...)
}
