package cu

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// Streams and events. Everything runs when it is enqueued except an
// upload from the host on a stream (MemcpyHtoDAsync), which is held until
// something needs it: an operation enqueued after it on the same stream,
// a wait on an event recorded after it (Stream.Wait, Event.Synchronize),
// the stream's Synchronize, or a synchronous copy (the legacy stream
// waits for the blocking streams). So work that reads an upload without
// waiting for its event sees the old contents, and a host that refills
// the source before the upload's event has fired sends the new contents:
// both show in the tests. cuBLAS and NCCL calls (C libraries) do not come
// through here; they run at once.

// stream is a stream's held uploads. Operation k of the stream is
// pending[k-done] once enqueued; ops below done have run.
type stream struct {
	pending []func()
	done    int
}

// emu is the streams and events, behind one lock (several device threads
// may call in).
var emu = struct {
	sync.Mutex
	streams map[unsafe.Pointer]*stream
	events  map[int]*event
	nextID  int
}{streams: map[unsafe.Pointer]*stream{}, events: map[int]*event{}}

// event is a recorded point: the stream and how many of its operations
// came before (nil stream: never recorded, which counts as done).
type event struct {
	s   *stream
	pos int
}

// Stream is a handle to an emulated stream, a byte of C memory so that
// cuBLAS and NCCL may keep it.
type Stream struct{ p unsafe.Pointer }

// C is the stream's handle, for cuBLAS and NCCL.
func (s Stream) C() unsafe.Pointer { return s.p }

// StreamFlags are cuStreamCreate's flags (ignored).
type StreamFlags byte

// DefaultStream is the default stream flag.
const DefaultStream StreamFlags = 0

// MakeStream makes a stream.
func MakeStream(StreamFlags) (Stream, error) {
	p := cMalloc(1)
	emu.Lock()
	defer emu.Unlock()
	emu.streams[p] = &stream{}
	return Stream{p}, nil
}

// Destroy runs what the stream holds and forgets it.
func (s *Stream) Destroy() error {
	emu.Lock()
	defer emu.Unlock()
	st, ok := emu.streams[s.p]
	if !ok {
		return errors.New("cu emulation: destroy of a stream not made or already destroyed")
	}
	st.run(st.done + len(st.pending))
	delete(emu.streams, s.p)
	cFree(s.p)
	*s = Stream{}
	return nil
}

// Synchronize runs everything the stream holds.
func (s Stream) Synchronize() error {
	s.flush()
	return nil
}

// flush runs what s holds (the zero Stream holds nothing).
func (s Stream) flush() {
	emu.Lock()
	defer emu.Unlock()
	if st := emu.streams[s.p]; st != nil {
		st.run(st.done + len(st.pending))
	}
}

// flushAll runs what every stream holds.
func flushAll() {
	emu.Lock()
	defer emu.Unlock()
	for _, st := range emu.streams {
		st.run(st.done + len(st.pending))
	}
}

// run runs the held operations below position upTo (emu is locked).
func (st *stream) run(upTo int) {
	for st.done < upTo && len(st.pending) > 0 {
		op := st.pending[0]
		st.pending = st.pending[1:]
		st.done++
		op()
	}
}

// MemcpyHtoDAsync holds a copy of n bytes to the device until something
// needs it (see above).
func MemcpyHtoDAsync(dst DevicePtr, src unsafe.Pointer, n int64, s Stream) error {
	span(dst, n) // check the range now, as the driver does
	emu.Lock()
	defer emu.Unlock()
	st := emu.streams[s.p]
	if st == nil {
		return errors.New("cu emulation: async copy on a stream not made")
	}
	st.pending = append(st.pending, func() {
		copy(span(dst, n), unsafe.Slice((*byte)(src), n))
	})
	return nil
}

// MemcpyDtoHAsync copies n bytes to the host after what s holds.
func MemcpyDtoHAsync(dst unsafe.Pointer, src DevicePtr, n int64, s Stream) error {
	s.flush()
	copy(unsafe.Slice((*byte)(dst), n), span(src, n))
	return nil
}

// EventFlags are cuEventCreate's flags (ignored).
type EventFlags byte

// The flags package cuda passes.
const (
	BlockingSyncEvent EventFlags = 1
	DisableTiming     EventFlags = 2
)

// Event is a handle to an emulated event.
type Event struct{ id int }

// MakeEvent makes an event, never recorded.
func MakeEvent(EventFlags) (Event, error) {
	emu.Lock()
	defer emu.Unlock()
	emu.nextID++
	emu.events[emu.nextID] = &event{}
	return Event{emu.nextID}, nil
}

// DestroyEvent forgets e; a second destroy, even of a copy of the handle,
// fails.
func DestroyEvent(e *Event) error {
	emu.Lock()
	defer emu.Unlock()
	if _, ok := emu.events[e.id]; !ok {
		return errors.New("cu emulation: destroy of an event not made or already destroyed")
	}
	delete(emu.events, e.id)
	*e = Event{}
	return nil
}

// Record marks e after what s has been given so far.
func (e Event) Record(s Stream) error {
	emu.Lock()
	defer emu.Unlock()
	ev, err := e.live("record")
	if err != nil {
		return err
	}
	st := emu.streams[s.p]
	if st == nil {
		return errors.New("cu emulation: record on a stream not made")
	}
	ev.s, ev.pos = st, st.done+len(st.pending)
	return nil
}

// Synchronize runs what came before e's last record.
func (e Event) Synchronize() error { return e.reach("synchronize") }

// Wait runs what came before e's last record: every operation later
// enqueued on s comes after it.
func (s Stream) Wait(e Event, _ uint) error { return e.reach("stream wait for") }

func (e Event) reach(op string) error {
	emu.Lock()
	defer emu.Unlock()
	ev, err := e.live(op)
	if err == nil && ev.s != nil {
		ev.s.run(ev.pos)
	}
	return err
}

func (e Event) live(op string) (*event, error) {
	ev := emu.events[e.id]
	if ev == nil {
		return nil, fmt.Errorf("cu emulation: %s an event not made or destroyed", op)
	}
	return ev, nil
}
