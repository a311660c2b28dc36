package tensorboard

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWriterRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tb")
	before := wallTime(time.Now())
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(w.Path()), "events.out.tfevents.") || filepath.Dir(w.Path()) != dir {
		t.Fatalf("path %s", w.Path())
	}
	// The header is on disk before any scalar, so a reader never sees an
	// empty file.
	if evs, err := ReadEvents(w.Path()); err != nil || len(evs) != 1 || evs[0].FileVersion != "brain.Event:2" {
		t.Fatalf("after NewWriter: %+v, %v", evs, err)
	}
	steps := []Event{
		{Step: 1, Values: []Value{{Tag: "x", SimpleValue: 0.5}}},
		{Step: 2, Values: []Value{{Tag: "x", SimpleValue: -1}, {Tag: "y", SimpleValue: 3e9}}},
	}
	for _, e := range steps {
		if err := w.AddScalars(e.Step, e.Values...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	after := wallTime(time.Now())
	evs, err := ReadEvents(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs {
		if e.WallTime < before || e.WallTime > after {
			t.Errorf("event %d wall time %f outside [%f, %f]", i, e.WallTime, before, after)
		}
		if i > 0 && (e.Step != steps[i-1].Step || !reflect.DeepEqual(e.Values, steps[i-1].Values)) {
			t.Errorf("event %d = %+v, want %+v", i, e, steps[i-1])
		}
	}
}

func TestTwoWritersGetTwoFiles(t *testing.T) {
	dir := t.TempDir()
	a, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Path() == b.Path() {
		t.Fatalf("both write %s", a.Path())
	}
}

func TestNewWriterErrorNamesThePath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := NewWriter(filepath.Join(file, "tb"))
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("err %v does not name %s", err, file)
	}
}

func TestReadEventsReportsFlippedByte(t *testing.T) {
	w, err := NewWriter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddScalars(7, Value{Tag: "train/loss", SimpleValue: 0.25}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-10] ^= 0x20 // inside the scalar event's data
	if err := os.WriteFile(w.Path(), b, 0o644); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadEvents(w.Path())
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), w.Path()) || len(evs) != 1 {
		t.Fatalf("%d events, err %v; want the header and ErrChecksum naming the file", len(evs), err)
	}
}
