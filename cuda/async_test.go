//go:build cuda

package cuda

import (
	"errors"
	"slices"
	"testing"
)

// Batches go round two pinned areas and two device buffers as
// engine/gpu's input ring sends them: the host refills an area once its
// copy has fired, the copy stream overwrites a buffer once the compute
// stream has read it, and the compute stream reads it once the copy has
// fired. Every round's data must arrive intact; on a GPU a missing wait
// shows as a round holding another round's values.
func TestAsyncCopiesRoundTwoSlots(t *testing.T) {
	r := newRand(t)
	const n, rounds = 1 << 18, 8
	sent := make([][]float32, rounds)
	got := make([][]float32, rounds)
	do(t, func(q *Queue) error {
		var host [2]Pinned
		var dev [2]Buffer
		var copied, consumed [2]Event
		for k := range 2 {
			host[k], dev[k] = q.AllocPinned(4*n), poisoned(q, n)
			copied[k], consumed[k] = q.NewEvent(), q.NewEvent()
		}
		out := make([]Buffer, rounds)
		for i := range rounds {
			k := i % 2
			q.HostWait(copied[k])
			if err := q.Err(); err != nil {
				return err
			}
			sent[i] = randFloats(r, n-i, 1) // shorter each round: a partial copy
			copy(Host[float32](host[k]), sent[i])
			q.UploadAsync([]Buffer{dev[k]}, []Pinned{PinnedSub[float32](host[k], 0, n-i)}, consumed[k], copied[k])
			out[i] = poisoned(q, n-i)
			q.Copy(out[i], Sub[float32](dev[k], 0, n-i))
			q.Record(consumed[k])
		}
		back, done := q.AllocPinned(4*n), q.NewEvent()
		for i := range rounds {
			view := PinnedSub[float32](back, 0, n-i)
			q.DownloadAsync(view, out[i], done)
			q.HostWait(done)
			got[i] = slices.Clone(Host[float32](view))
		}
		for k := range 2 {
			q.FreePinned(host[k])
			q.FreeEvent(copied[k])
			q.FreeEvent(consumed[k])
		}
		q.FreePinned(back)
		q.FreeEvent(done)
		return nil
	})
	for i := range rounds {
		if !slices.Equal(got[i], sent[i]) {
			t.Errorf("round %d: the device saw other values than were sent", i)
		}
	}
}

func TestAsyncCopyArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(q *Queue)
	}{
		{"free of a pinned view", func(q *Queue) {
			p := q.AllocPinned(64)
			q.FreePinned(PinnedSub[float32](p, 1, 4))
		}},
		{"second free of pinned memory", func(q *Queue) {
			p := q.AllocPinned(64)
			q.FreePinned(p)
			q.FreePinned(p)
		}},
		{"oversized async upload", func(q *Queue) {
			p, b, e := q.AllocPinned(64), q.Alloc(32), q.NewEvent()
			q.UploadAsync([]Buffer{b}, []Pinned{p}, Event{}, e)
		}},
		{"async upload without a done event", func(q *Queue) {
			p, b := q.AllocPinned(64), q.Alloc(64)
			q.UploadAsync([]Buffer{b}, []Pinned{p}, Event{}, Event{})
		}},
		{"oversized async download", func(q *Queue) {
			p, b, e := q.AllocPinned(64), q.Alloc(32), q.NewEvent()
			q.DownloadAsync(p, b, e)
		}},
		{"AllocPinned(0)", func(q *Queue) { q.AllocPinned(0) }},
	} {
		err := testDev.Do(func(q *Queue) error { tc.f(q); return nil })
		if !errors.Is(err, ErrArgument) {
			t.Errorf("%s: err = %v, want ErrArgument", tc.name, err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("PinnedSub beyond the area did not panic")
		}
	}()
	PinnedSub[int32](Pinned{bytes: 16}, 2, 3) // the range is checked before the address is used
}
