// Package profile records a rank's timeline — forward, backward, each
// gradient bucket's all-reduce, optimizer, data, checkpoints — as spans and
// writes it in Chrome's trace event format, as Horovod's timeline does.
// Each rank writes its own file; rank 0 merges them into one that
// chrome://tracing or ui.perfetto.dev shows with a process per rank.
package profile

import (
	"fmt"
	"sync"
	"time"
)

// Categories the trainer records. A span's category picks its lane.
const (
	CatForward    = "forward"
	CatBackward   = "backward"
	CatOptimizer  = "optimizer"
	CatAllReduce  = "allreduce"
	CatCollective = "collective" // meters, broadcasts, barriers
	CatData       = "data"
	CatCheckpoint = "checkpoint"
)

// Lane is a row of a rank's timeline (a Chrome trace "thread").
type Lane int

// The lanes, in display order.
const (
	Compute Lane = iota
	Communication
	IO
	numLanes
)

// String is the lane's row title.
func (l Lane) String() string {
	switch l {
	case Compute:
		return "compute"
	case Communication:
		return "communication"
	case IO:
		return "io"
	}
	return fmt.Sprintf("lane %d", int(l))
}

// LaneOf puts collectives on the communication lane, data loading and
// checkpoints on the io lane, and everything else on the compute lane, so
// that overlap of communication with backward shows as two rows.
func LaneOf(cat string) Lane {
	switch cat {
	case CatAllReduce, CatCollective:
		return Communication
	case CatData, CatCheckpoint:
		return IO
	}
	return Compute
}

// DefaultCapacity is the span limit New uses for a capacity ≤ 0: about
// 48 MB, ≈35,000 steps at 30 spans per step.
const DefaultCapacity = 1 << 20

// preallocated is how many spans New reserves room for up front (≈3 MB);
// the slice grows from there up to the recorder's capacity.
const preallocated = 1 << 16

// Recorder collects spans in memory, safely from any goroutine. A nil
// *Recorder is valid and records nothing, so callers need no check.
type Recorder struct {
	rank     int
	capacity int
	mu       sync.Mutex
	spans    []span
	dropped  int
}

type span struct {
	name, cat string
	start     int64 // ns since the Unix epoch
	dur       int64 // ns, from the monotonic clock
}

// New makes a recorder for rank that keeps the first capacity spans and
// counts the rest as dropped, bounding memory on long runs.
func New(rank, capacity int) *Recorder {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Recorder{rank: rank, capacity: capacity, spans: make([]span, 0, min(capacity, preallocated))}
}

// Span is a started span; End records it. The zero Span (from a nil
// Recorder) ends as a no-op.
type Span struct {
	r         *Recorder
	name, cat string
	start     time.Time
}

// Begin starts a span now.
func (r *Recorder) Begin(name, cat string) Span {
	if r == nil {
		return Span{}
	}
	return Span{r: r, name: name, cat: cat, start: time.Now()}
}

// End records the span as lasting until now.
func (s Span) End() {
	if s.r == nil {
		return
	}
	s.r.add(span{name: s.name, cat: s.cat, start: s.start.UnixNano(), dur: int64(time.Since(s.start))})
}

func (r *Recorder) add(sp span) {
	r.mu.Lock()
	if len(r.spans) < r.capacity {
		r.spans = append(r.spans, sp)
	} else {
		r.dropped++
	}
	r.mu.Unlock()
}

// Dropped is how many spans did not fit.
func (r *Recorder) Dropped() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}
