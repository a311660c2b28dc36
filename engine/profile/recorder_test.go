package profile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestSpansFromManyGoroutines(t *testing.T) {
	const goroutines, each = 8, 100
	cats := []string{CatForward, CatBackward, CatAllReduce, CatData, CatOptimizer, CatCheckpoint, CatCollective}
	r := New(3, 10000)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r.Begin(fmt.Sprintf("g%d-%d", g, i), cats[(g+i)%len(cats)]).End()
			}
		})
	}
	wg.Wait()
	path := filepath.Join(t.TempDir(), "rank3.json")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Plain encoding/json, as any trace viewer would see it.
	var doc struct {
		TraceEvents     []map[string]any `json:"traceEvents"`
		DisplayTimeUnit string           `json:"displayTimeUnit"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.DisplayTimeUnit != "ms" {
		t.Errorf("displayTimeUnit %q", doc.DisplayTimeUnit)
	}
	spans, names := 0, map[string]bool{}
	threads := map[float64]any{}
	for _, e := range doc.TraceEvents {
		for _, k := range []string{"name", "ph", "ts", "dur", "pid", "tid"} {
			if _, ok := e[k]; !ok {
				t.Fatalf("event %v has no %q", e, k)
			}
		}
		if e["pid"] != 3.0 {
			t.Fatalf("event %v: pid is not the rank", e)
		}
		switch e["ph"] {
		case "X":
			spans++
			names[e["name"].(string)] = true
			if want := float64(LaneOf(e["cat"].(string))); e["tid"] != want {
				t.Fatalf("event %v: tid, want %v", e, want)
			}
		case "M":
			args := e["args"].(map[string]any)
			switch e["name"] {
			case "process_name":
				if args["name"] != "rank 3" {
					t.Errorf("process named %v", args["name"])
				}
			case "thread_name":
				threads[e["tid"].(float64)] = args["name"]
			}
		default:
			t.Fatalf("event %v: phase", e)
		}
	}
	if spans != goroutines*each || len(names) != goroutines*each {
		t.Fatalf("%d spans, %d names; want %d", spans, len(names), goroutines*each)
	}
	want := map[float64]any{0: "compute", 1: "communication", 2: "io"}
	if fmt.Sprint(threads) != fmt.Sprint(want) {
		t.Fatalf("threads %v, want %v", threads, want)
	}
}

func TestSpanTimes(t *testing.T) {
	r := New(0, 10)
	before := time.Now()
	s := r.Begin("backward", CatBackward)
	time.Sleep(2 * time.Millisecond) // a floor only; nothing asserts an upper bound
	s.End()
	evs := r.Events()
	e := evs[len(evs)-1]
	if e.Ph != "X" || e.Name != "backward" || e.Cat != CatBackward || e.Tid != int(Compute) {
		t.Fatalf("%+v", e)
	}
	if e.Dur < 2000 || e.TS < float64(before.UnixMicro())-1 {
		t.Fatalf("ts %f dur %f µs; began at %d µs", e.TS, e.Dur, before.UnixMicro())
	}
}

func TestFullRecorderDropsAndSaysSo(t *testing.T) {
	r := New(1, 10)
	for range 15 {
		r.Begin("step", CatForward).End()
	}
	if r.Dropped() != 5 {
		t.Fatalf("dropped %d, want 5", r.Dropped())
	}
	spans, labelled := 0, false
	for _, e := range r.Events() {
		if e.Ph == "X" {
			spans++
		}
		if e.Name == "process_labels" && e.Args["labels"] == "5 spans dropped (recorder full)" {
			labelled = true
		}
	}
	if spans != 10 || !labelled {
		t.Fatalf("%d spans, labelled %v", spans, labelled)
	}
}

func TestDefaultCapacity(t *testing.T) {
	r := New(0, 0)
	r.Begin("forward", CatForward).End()
	if r.capacity != DefaultCapacity || len(r.spans) != 1 {
		t.Fatalf("capacity %d, %d spans", r.capacity, len(r.spans))
	}
}

func TestNilRecorderIsANoOp(t *testing.T) {
	var r *Recorder
	r.Begin("forward", CatForward).End()
	path := filepath.Join(t.TempDir(), "trace.json")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("nil recorder wrote %s (%v)", path, err)
	}
	if r.Events() != nil || r.Dropped() != 0 {
		t.Fatal("nil recorder has events")
	}
}
