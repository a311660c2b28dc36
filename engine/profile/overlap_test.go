package profile

import (
	"testing"
	"time"
)

func x(pid int, cat string, ts, dur float64) Event {
	return Event{Name: cat, Cat: cat, Ph: "X", TS: ts, Dur: dur, Pid: pid, Tid: int(LaneOf(cat))}
}

func TestOverlaps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []Event
		want   bool
	}{
		{"inside", []Event{x(0, "backward", 0, 10), x(0, "allreduce", 2, 3)}, true},
		{"straddling the end", []Event{x(0, "backward", 0, 10), x(0, "allreduce", 9, 3)}, true},
		{"touching only", []Event{x(0, "backward", 0, 10), x(0, "allreduce", 10, 3)}, false},
		{"other rank", []Event{x(0, "backward", 0, 10), x(1, "allreduce", 2, 3)}, false},
		{"other category", []Event{x(0, "backward", 0, 10), x(0, "data", 2, 3)}, false},
		{"zero duration", []Event{x(0, "backward", 0, 10), x(0, "allreduce", 5, 0)}, false},
		{"metadata ignored", []Event{x(0, "backward", 0, 10), {Name: "thread_name", Cat: "allreduce", Ph: "M", TS: 5}}, false},
		{
			// The first backward ends before the all-reduce; a later,
			// longer one (listed first) covers it.
			"unsorted, found past a non-overlap",
			[]Event{x(0, "backward", 1, 20), x(0, "allreduce", 10, 1), x(0, "backward", 0, 3)},
			true,
		},
		{
			"many disjoint",
			[]Event{
				x(0, "backward", 0, 1), x(0, "allreduce", 1, 1), x(0, "backward", 2, 1),
				x(0, "allreduce", 3, 1), x(0, "backward", 4, 1), x(0, "allreduce", 5, 1),
			},
			false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Overlaps(tc.events, "backward", "allreduce"); got != tc.want {
				t.Fatalf("Overlaps = %v, want %v", got, tc.want)
			}
			if got := Overlaps(tc.events, "allreduce", "backward"); got != tc.want {
				t.Fatalf("Overlaps (swapped) = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRecordedOverlap records what the trainer does: a bucket's all-reduce
// on another goroutine while backward continues.
func TestRecordedOverlap(t *testing.T) {
	r := New(0, 100)
	back := r.Begin("backward", CatBackward)
	time.Sleep(time.Millisecond) // separation only; nothing asserts a duration
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		s := r.Begin("bucket 0", CatAllReduce)
		close(started)
		<-release
		s.End()
		close(done)
	}()
	<-started
	time.Sleep(time.Millisecond)
	back.End()
	close(release)
	<-done
	time.Sleep(time.Millisecond)
	r.Begin("next batch", CatData).End()
	evs := r.Events()
	if !Overlaps(evs, CatBackward, CatAllReduce) {
		t.Fatalf("backward and all-reduce do not overlap: %+v", evs)
	}
	if Overlaps(evs, CatBackward, CatData) {
		t.Fatalf("backward overlaps the later data span: %+v", evs)
	}
}
