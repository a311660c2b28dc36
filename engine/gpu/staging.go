//go:build cuda

package gpu

import "cohort/cuda"

// inputSlot is one of the two ways a host batch takes to the GPU: a pinned
// host area the batch is copied into, device buffers the copy stream
// fills from it, and the events that keep the three in step.
type inputSlot struct {
	hostX, hostLabels cuda.Pinned
	x, labels         cuda.Buffer
	// copied fires when the upload has read the pinned area (so the host
	// may refill it); consumed when the compute work that read x and
	// labels has run (so the next upload may overwrite them).
	copied, consumed cuda.Event
}

// inputRing alternates between two slots, so the upload of batch t+1 can
// run while batch t is computed, and the host waits only when it is two
// batches ahead of the copies.
type inputRing struct {
	slots [2]inputSlot
	turn  int
}

// newInputRing makes the slots for batches of up to maxBatch samples of
// inSize float32s; alloc makes device buffers the model frees.
func newInputRing(q *cuda.Queue, maxBatch, inSize int, alloc func(values int) cuda.Buffer) *inputRing {
	r := &inputRing{}
	for i := range r.slots {
		s := &r.slots[i]
		s.hostX, s.hostLabels = q.AllocPinned(4*int64(maxBatch*inSize)), q.AllocPinned(4*int64(maxBatch))
		s.x, s.labels = alloc(maxBatch*inSize), alloc(maxBatch)
		s.copied, s.consumed = q.NewHostEvent(), q.NewEvent()
	}
	return r
}

// send copies a host batch into the next slot's pinned area and enqueues
// its upload; work enqueued on the compute stream afterwards sees it. The
// caller records the slot's consumed event after that work.
func (r *inputRing) send(q *cuda.Queue, x []float32, labels []int32) *inputSlot {
	s := &r.slots[r.turn]
	r.turn ^= 1
	q.HostWait(s.copied)
	if q.Err() != nil {
		return s
	}
	px, pl := cuda.PinnedSub[float32](s.hostX, 0, len(x)), cuda.PinnedSub[int32](s.hostLabels, 0, len(labels))
	copy(cuda.Host[float32](px), x)
	copy(cuda.Host[int32](pl), labels)
	q.UploadAsync([]cuda.Buffer{s.x, s.labels}, []cuda.Pinned{px, pl}, s.consumed, s.copied)
	return s
}

// free releases the pinned areas and events (the device buffers are the
// model's).
func (r *inputRing) free(q *cuda.Queue) {
	for i := range r.slots {
		s := &r.slots[i]
		q.FreePinned(s.hostX)
		q.FreePinned(s.hostLabels)
		q.FreeEvent(s.copied)
		q.FreeEvent(s.consumed)
	}
}
