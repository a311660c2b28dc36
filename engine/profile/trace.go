package profile

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// ErrNotTrace marks a file without a traceEvents array.
var ErrNotTrace = errors.New("profile: not a Chrome trace file")

// Event is one Chrome trace event: a complete span (Ph "X") or metadata
// (Ph "M", naming a process or thread in Args). TS and Dur are µs; TS is
// since the Unix epoch, so ranks on one machine line up.
type Event struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	TS   float64        `json:"ts"`
	Dur  float64        `json:"dur"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

// Events is the rank's timeline: metadata naming the process "rank N" and
// its lanes, then every recorded span, oldest first.
func (r *Recorder) Events() []Event {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	spans := slices.Clone(r.spans)
	dropped := r.dropped
	r.mu.Unlock()

	evs := []Event{
		{Name: "process_name", Ph: "M", Pid: r.rank, Args: map[string]any{"name": fmt.Sprintf("rank %d", r.rank)}},
		{Name: "process_sort_index", Ph: "M", Pid: r.rank, Args: map[string]any{"sort_index": r.rank}},
	}
	if dropped > 0 {
		evs = append(evs, Event{Name: "process_labels", Ph: "M", Pid: r.rank,
			Args: map[string]any{"labels": fmt.Sprintf("%d spans dropped (recorder full)", dropped)}})
	}
	var used [numLanes]bool
	for _, sp := range spans {
		used[LaneOf(sp.cat)] = true
	}
	for l, ok := range used {
		if ok {
			evs = append(evs,
				Event{Name: "thread_name", Ph: "M", Pid: r.rank, Tid: l, Args: map[string]any{"name": Lane(l).String()}},
				Event{Name: "thread_sort_index", Ph: "M", Pid: r.rank, Tid: l, Args: map[string]any{"sort_index": l}})
		}
	}
	slices.SortStableFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for _, sp := range spans {
		evs = append(evs, Event{Name: sp.name, Cat: sp.cat, Ph: "X",
			TS: float64(sp.start) / 1e3, Dur: float64(sp.dur) / 1e3, Pid: r.rank, Tid: int(LaneOf(sp.cat))})
	}
	return evs
}

// WriteFile writes the timeline as a Chrome trace file, replacing path
// atomically (rank 0 may be waiting to merge it). A nil Recorder writes
// nothing.
func (r *Recorder) WriteFile(path string) error {
	if r == nil {
		return nil
	}
	evs := r.Events()
	raw := make([]json.RawMessage, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("profile %s: %w", path, err)
		}
		raw[i] = b
	}
	return writeTrace(path, raw)
}

// traceFile is the JSON object form of a Chrome trace.
type traceFile struct {
	TraceEvents     []json.RawMessage `json:"traceEvents"`
	DisplayTimeUnit string            `json:"displayTimeUnit,omitempty"`
}

// Merge concatenates the events of per-rank trace files into out; each
// rank keeps its own pid.
func Merge(paths []string, out string) error {
	var all []json.RawMessage
	for _, p := range paths {
		t, err := readTrace(p)
		if err != nil {
			return err
		}
		all = append(all, t.TraceEvents...)
	}
	return writeTrace(out, all)
}

// ReadFile decodes a trace file's events.
func ReadFile(path string) ([]Event, error) {
	t, err := readTrace(path)
	if err != nil {
		return nil, err
	}
	evs := make([]Event, len(t.TraceEvents))
	for i, raw := range t.TraceEvents {
		if err := json.Unmarshal(raw, &evs[i]); err != nil {
			return nil, fmt.Errorf("profile %s: event %d: %w", path, i, err)
		}
	}
	return evs, nil
}

func readTrace(path string) (traceFile, error) {
	var t traceFile
	b, err := os.ReadFile(path)
	if err != nil {
		return t, fmt.Errorf("profile: %w", err)
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("profile %s: %w", path, err)
	}
	if t.TraceEvents == nil {
		return t, fmt.Errorf("%w: %s", ErrNotTrace, path)
	}
	return t, nil
}

// writeTrace streams events into a temporary file, one per line, and
// renames it over path.
func writeTrace(path string, events []json.RawMessage) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".trace-*.json")
	if err != nil {
		return fmt.Errorf("profile %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // after a successful rename this finds nothing
	w := bufio.NewWriter(f)
	w.WriteString(`{"traceEvents":[`)
	for i, e := range events {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString("\n")
		w.Write(e)
	}
	w.WriteString("\n],\"displayTimeUnit\":\"ms\"}\n")
	// bufio's error is sticky: checking Flush covers every write above.
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("profile %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("profile %s: %w", path, err)
	}
	return nil
}
