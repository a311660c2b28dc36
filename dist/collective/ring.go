package collective

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// sockBufBytes is asked for as both socket buffers, so a whole chunk
// pipeline fits in flight (the kernel caps it at net.core.[rw]mem_max).
const sockBufBytes = 4 << 20

// aLongTimeAgo is a deadline in the past: setting it interrupts a blocked
// read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// ring is a group's two connections and the goroutines that serve them.
// send is the connection dialled to next: data flows out on it, and aborts
// and byes come back on it (read by watchNext). recv is the connection
// accepted from prev: data comes in on it (read by the operation's
// goroutine), and aborts and byes go back on it.
type ring struct {
	rank        int
	prev, next  int
	send, recv  net.Conn
	stall       time.Duration // no progress for this long is a stall
	grace       time.Duration // the frame being sent may finish within this after a failure upstream
	linger      time.Duration // farewells and Close wait at most this for the peers
	chunkFloats int

	// Owned by the operation's goroutine.
	scratch []float32 // one chunk, received before it is reduced into place
	rhdr    [headerBytes]byte
	rbody   [maxAbortBytes]byte

	// Owned by the sender goroutine.
	shdr      [headerBytes]byte
	iov       [2][]byte
	bufs      net.Buffers
	timer     *time.Timer
	sendDirty bool // a frame was cut short: the stream can carry nothing more

	// The operation's goroutine and the sender meet here once per operation
	// (jobs, done, end) and once per received chunk (progress, wake).
	progress atomic.Int64
	wake     chan struct{}
	jobs     chan sendJob
	done     chan error
	end      chan struct{}
	quit     chan struct{}
	sent     chan struct{} // closed when the sender goroutine ends

	nextBye  atomic.Bool   // next said bye: it took part in every operation it will
	byeSeen  chan struct{} // closed with nextBye, for the idle sender
	farewell []byte        // set by Group.fail before broken closes

	g  *Group
	wg sync.WaitGroup
}

// sendJob is one operation as the sender sees it.
type sendJob struct {
	p    plan
	data []byte // the data buffer as bytes
	seq  uint32
}

func newRing(g *Group, cfg *Config, send, recv net.Conn) *ring {
	for _, c := range []net.Conn{send, recv} {
		if tc, ok := c.(*net.TCPConn); ok {
			// Best effort: the defaults still work, only slower.
			_ = tc.SetNoDelay(true)
			_ = tc.SetReadBuffer(sockBufBytes)
			_ = tc.SetWriteBuffer(sockBufBytes)
		}
	}
	r := &ring{
		rank: cfg.Rank, prev: cfg.prev(), next: cfg.next(),
		send: send, recv: recv,
		stall:       cfg.StallTimeout,
		grace:       min(cfg.StallTimeout/4, 250*time.Millisecond),
		linger:      min(cfg.StallTimeout, time.Second),
		chunkFloats: cfg.ChunkBytes / 4,
		scratch:     make([]float32, cfg.ChunkBytes/4),
		timer:       time.NewTimer(time.Hour),
		wake:        make(chan struct{}, 1),
		jobs:        make(chan sendJob, 1),
		done:        make(chan error, 1),
		end:         make(chan struct{}, 1),
		quit:        make(chan struct{}),
		sent:        make(chan struct{}),
		byeSeen:     make(chan struct{}),
		g:           g,
	}
	r.timer.Stop()
	r.wg.Add(1)
	go r.sendLoop()
	go r.watchNext()
	return r
}

// interrupt runs after the group broke. The operation's receive stops at
// once. The frame being sent stops at once if next is the trouble (or this
// rank gave up), and otherwise gets grace to finish, so an abort can still
// follow it to next. The farewell goes to prev from here, and to next from
// the sender once it is idle.
func (r *ring) interrupt(from side) {
	_ = r.recv.SetReadDeadline(aLongTimeAgo)
	if from == sidePrev {
		_ = r.send.SetWriteDeadline(time.Now().Add(r.grace))
	} else {
		_ = r.send.SetWriteDeadline(aLongTimeAgo)
	}
	r.wg.Add(1)
	go r.farewellPrev()
}

// farewellPrev tells prev why this rank stopped, then half-closes.
func (r *ring) farewellPrev() {
	defer r.wg.Done()
	if r.farewell != nil {
		_ = r.recv.SetWriteDeadline(time.Now().Add(r.linger))
		_, _ = r.recv.Write(r.farewell)
	}
	closeWrite(r.recv)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// blame encodes an abort naming culprit, as reported by this rank.
func (r *ring) blame(culprit int, kind failKind, reason string) []byte {
	return abortFrame(&abortMsg{culprit: uint32(culprit), reporter: uint32(r.rank), kind: kind, reason: reason})
}

// abortFrame encodes m as a frame, to report or to relay.
func abortFrame(m *abortMsg) []byte {
	body := m.append(nil)
	var hb [headerBytes]byte
	(&header{typ: frameAbort, size: uint32(len(body))}).put(&hb)
	return append(hb[:], body...)
}

func byeFrame() []byte {
	var hb [headerBytes]byte
	(&header{typ: frameBye}).put(&hb)
	return hb[:]
}

// shutdown runs under the group's operation lock after fail. The sender
// finishes its farewell; what prev still sends is drained until prev
// closes its end (it does on our bye or abort) or linger passes, so that
// closing does not reset a connection with our farewell still in flight.
// Nothing needs draining from next: watchNext reads that side throughout.
func (r *ring) shutdown() {
	close(r.quit)
	_ = r.recv.SetReadDeadline(time.Now().Add(r.linger))
	drain := floatBytes(r.scratch)
	for {
		if _, err := r.recv.Read(drain); err != nil {
			break
		}
	}
	<-r.sent
	_ = r.send.Close()
	_ = r.recv.Close()
	r.wg.Wait()
}
