package gpu

import "fmt"

// Gradient buckets for an all-reduce overlapped with the backward pass, as
// DDP's: the flat gradient is cut into ranges of whole parameter slots, in
// layout order (the last layer first, roughly the order backward finishes
// them), the first range small so that communication starts early, the
// others large so that few collectives are launched. A bucket is handed to
// NCCL right after the backward step that writes its last slot.

// Bucket sizes: DDP's defaults (1 MiB first, then 25 MiB).
const (
	firstBucketBytes = 1 << 20
	bucketBytes      = 25 << 20
)

// bucketPlan is where the flat gradient is cut and when each piece is
// complete.
type bucketPlan struct {
	// ranges are the buckets' offsets and lengths in float32s, covering
	// the flat gradient in order.
	ranges [][2]int
	// ready[i] lists the buckets that backward step i completes, in the
	// order their collectives are enqueued (the same on every rank).
	ready [][]int
}

// planBuckets cuts slots (the flat layout) into buckets of at most first
// and then rest bytes (a single slot larger than that is a bucket of its
// own) and finds, for each step of sched, the buckets it completes.
func planBuckets(layers []layerSpec, sched schedule, slots []Slot, first, rest int) bucketPlan {
	var p bucketPlan
	bucketOf := map[int]int{} // slot offset → bucket
	pending := []int{}        // slots each bucket still waits for
	limit := first
	for _, s := range slots {
		n := len(p.ranges)
		if n == 0 || 4*(p.ranges[n-1][1]+s.Len) > limit {
			if n > 0 {
				limit = rest
			}
			p.ranges = append(p.ranges, [2]int{s.Offset, 0})
			pending = append(pending, 0)
			n++
		}
		p.ranges[n-1][1] += s.Len
		pending[n-1]++
		bucketOf[s.Offset] = n - 1
	}
	p.ready = make([][]int, len(sched.steps))
	for i, st := range sched.steps {
		l := &layers[st.layer]
		if st.kind != layerStep || !l.hasParams() {
			continue
		}
		written := []Slot{l.w}
		if l.bias != nil {
			written = append(written, l.b)
		}
		for _, s := range written {
			b := bucketOf[s.Offset]
			if pending[b]--; pending[b] == 0 {
				p.ready[i] = append(p.ready[i], b)
			}
		}
	}
	for b, n := range pending {
		if n != 0 {
			panic(fmt.Sprintf("gpu: bucket %d of the gradient is never completed by the backward pass (%d slots left)", b, n))
		}
	}
	return p
}
