// Package tensorboard writes TensorBoard event files (TFRecord-framed Event
// protos, encoded by hand) and reads them back, and has the hook that logs
// the trainer's losses, LR and meters to them.
package tensorboard

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// fileVersion is the header TensorBoard expects as the first event.
const fileVersion = "brain.Event:2"

// Writer appends events to one event file. It is not safe for concurrent
// use.
type Writer struct {
	path string
	f    *os.File
	buf  *bufio.Writer
	// scratch holds the encoded event and its framing between writes.
	scratch, record []byte
}

// NewWriter creates dir and a new event file in it, named as TensorBoard's
// own writers name theirs (events.out.tfevents.<secs>.<host>.<pid>.<seq>),
// and writes the file-version event.
func NewWriter(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard %s: %w", dir, err)
	}
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	now := time.Now()
	// Two writers opened in the same second by one process take the next
	// free sequence number.
	for seq := 0; ; seq++ {
		path := filepath.Join(dir, fmt.Sprintf("events.out.tfevents.%d.%s.%d.%d", now.Unix(), host, os.Getpid(), seq))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tensorboard %s: %w", path, err)
		}
		w := &Writer{path: path, f: f, buf: bufio.NewWriter(f)}
		if err := w.write(Event{WallTime: wallTime(now), FileVersion: fileVersion}); err != nil {
			f.Close()
			return nil, err
		}
		return w, w.Flush()
	}
}

// Path is the event file's path.
func (w *Writer) Path() string { return w.path }

// AddScalars writes one event holding values at step.
func (w *Writer) AddScalars(step int64, values ...Value) error {
	return w.write(Event{WallTime: wallTime(time.Now()), Step: step, Values: values})
}

// Flush pushes buffered events to the file, so TensorBoard sees them.
func (w *Writer) Flush() error {
	if err := w.buf.Flush(); err != nil {
		return fmt.Errorf("tensorboard %s: %w", w.path, err)
	}
	return nil
}

// Close flushes and closes the file.
func (w *Writer) Close() error {
	ferr := w.Flush()
	if err := w.f.Close(); err != nil && ferr == nil {
		ferr = fmt.Errorf("tensorboard %s: %w", w.path, err)
	}
	return ferr
}

func (w *Writer) write(e Event) error {
	w.scratch = e.appendProto(w.scratch[:0])
	w.record = appendRecord(w.record[:0], w.scratch)
	if _, err := w.buf.Write(w.record); err != nil {
		return fmt.Errorf("tensorboard %s: %w", w.path, err)
	}
	return nil
}

func wallTime(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
