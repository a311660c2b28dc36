package gpu

import (
	"fmt"
	"testing"

	"cohort/engine/task"
)

// Buckets cover the flat gradient in order, keep to their sizes, and each
// is handed over exactly once, at the first step after which no step
// writes any of its slots.
func TestPlanBuckets(t *testing.T) {
	models := map[string]*task.Task{"lenet": lenetTask(t, 1), "bnmlp": bnMLPTask(t, 1, true)}
	for _, c := range resnetCases {
		models["resnet_"+c.String()] = resnetTask(t, 1, c.basic, c.small, 12)
	}
	for name, tk := range models {
		net, err := plan(tk.Model, tk.InputShape()...)
		if err != nil {
			t.Fatal(err)
		}
		sched := newSchedule(net)
		for _, size := range [][2]int{{firstBucketBytes, bucketBytes}, {64, 4096}, {4, 4}} {
			t.Run(fmt.Sprintf("%s/%d,%d", name, size[0], size[1]), func(t *testing.T) {
				p := planBuckets(net.layers, sched, net.slots, size[0], size[1])
				checkBuckets(t, net, sched, p, size[0], size[1])
			})
		}
	}
}

func checkBuckets(t *testing.T, net *network, sched schedule, p bucketPlan, first, rest int) {
	t.Helper()
	total := 0
	for _, s := range net.slots {
		total += s.Len
	}
	slotLen := map[int]int{} // by offset
	for _, s := range net.slots {
		slotLen[s.Offset] = s.Len
	}
	off := 0
	for b, r := range p.ranges {
		if _, ok := slotLen[r[0]]; r[0] != off || r[1] <= 0 || !ok {
			t.Fatalf("bucket %d is %v, want to start at slot offset %d", b, r, off)
		}
		limit := rest
		if b == 0 {
			limit = first
		}
		if 4*r[1] > limit && slotLen[r[0]] != r[1] {
			t.Errorf("bucket %d (%v) is over %d bytes and more than one slot", b, r, limit)
		}
		off += r[1]
	}
	if off != total {
		t.Fatalf("buckets cover %d of %d values", off, total)
	}
	// The last step writing each bucket, from the layers' slots.
	last := make([]int, len(p.ranges))
	for i := range last {
		last[i] = -1
	}
	for i, st := range sched.steps {
		l := &net.layers[st.layer]
		if st.kind != layerStep || !l.hasParams() {
			continue
		}
		for b, r := range p.ranges {
			for _, s := range []Slot{l.w, l.b} {
				if s.Len > 0 && s.Offset >= r[0] && s.Offset < r[0]+r[1] {
					last[b] = i
				}
			}
		}
	}
	seen := make([]int, len(p.ranges))
	for i, bs := range p.ready {
		for _, b := range bs {
			seen[b]++
			if last[b] != i {
				t.Errorf("bucket %d handed over after step %d; its last write is step %d", b, i, last[b])
			}
		}
	}
	for b, n := range seen {
		if n != 1 {
			t.Errorf("bucket %d handed over %d times", b, n)
		}
	}
	if len(p.ranges) < 2 && 4*total > first {
		t.Errorf("%d values in one bucket", total)
	}
}
