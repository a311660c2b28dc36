package collective

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// wantPeerError requires err to be a *PeerError blaming rank for reason.
func wantPeerError(t *testing.T, who int, err error, rank int, reason error) {
	t.Helper()
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Rank != rank || !errors.Is(err, reason) {
		t.Fatalf("rank %d: got %v, want a PeerError blaming rank %d with %v", who, err, rank, reason)
	}
}

// crash silences a rank and closes its sockets under it, as a killed
// process's kernel would: its neighbours get no farewell, only EOF or RST.
func crash(g *Group) {
	g.fail(sideLocal, errors.New("crashed"), nil)
	g.ring.send.Close()
	g.ring.recv.Close()
}

// TestPeerLostMidOperation has one rank vanish while the others wait inside
// an all-reduce. With a one-minute stall timeout, only loss detection can
// end their operations; each must blame the vanished rank.
func TestPeerLostMidOperation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		victim int
		absent int // a rank that never joins, so the operation cannot finish; -1 for none
		close  bool
	}{
		{"crash/ranks=2", 2, 1, -1, false},
		{"crash/ranks=3", 3, 1, -1, false},
		{"crash/ranks=4", 4, 2, -1, false},
		{"close-in-op/ranks=3", 3, 1, 2, true},
		{"close-in-op/ranks=4", 4, 0, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs := newGroups(t, tc.n, func(c *Config) { c.StallTimeout = time.Minute; c.ChunkBytes = 4096 })
			type result struct {
				rank int
				err  error
				at   time.Time
			}
			results := make(chan result, tc.n)
			var crashed time.Time
			var joined []int
			for r, g := range gs {
				if r == tc.absent || (r == tc.victim && !tc.close) {
					continue
				}
				joined = append(joined, r)
				go func() {
					err := g.AllReduceSum(make([]float32, 1<<16))
					results <- result{r, err, time.Now()}
				}()
			}
			for _, r := range joined {
				waitInOp(t, gs[r])
			}
			crashed = time.Now()
			if tc.close {
				gs[tc.victim].Close()
			} else {
				crash(gs[tc.victim])
			}
			for range joined {
				res := within(t, results, "operation after a peer was lost")
				if res.rank == tc.victim {
					if !errors.Is(res.err, ErrClosed) {
						t.Errorf("victim: got %v, want ErrClosed", res.err)
					}
					continue
				}
				wantPeerError(t, res.rank, res.err, tc.victim, ErrPeerLost)
				t.Logf("rank %d failed %v after the loss: %v", res.rank, res.at.Sub(crashed), res.err)
			}
			if tc.absent >= 0 {
				waitFailed(t, gs[tc.absent])
				wantPeerError(t, tc.absent, gs[tc.absent].Barrier(), tc.victim, ErrPeerLost)
			}
		})
	}
}

// TestPeerStalled has one rank never join; the others must fail with
// ErrPeerStalled blaming it, whether they notice by reading or by writing.
func TestPeerStalled(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		floats int
	}{
		{"ranks=2", 2, 1000},
		{"ranks=3", 3, 1000},
		{"ranks=2/blocked-writer", 2, 1 << 23},
		{"ranks=4/blocked-writer", 4, 1 << 23},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs := newGroups(t, tc.n, func(c *Config) { c.StallTimeout = 300 * time.Millisecond })
			stalled := tc.n - 1
			errs := onEach(gs[:stalled], func(r int, g *Group) error { return g.AllReduceSum(make([]float32, tc.floats)) })
			for r, err := range errs {
				wantPeerError(t, r, err, stalled, ErrPeerStalled)
			}
		})
	}
}

func TestAbortUnblocksOperation(t *testing.T) {
	gs := newGroups(t, 3, func(c *Config) { c.StallTimeout = time.Minute })
	boom := errors.New("liveness: rank 2 stopped heartbeating")
	errs := make(chan error, 2)
	for _, g := range gs[:2] {
		go func() { errs <- g.AllReduceSum(make([]float32, 4096)) }()
	}
	waitInOp(t, gs[0])
	waitInOp(t, gs[1])
	gs[0].Abort(boom)
	for range 2 {
		err := within(t, errs, "operation after Abort")
		var pe *PeerError
		switch {
		case errors.Is(err, boom): // rank 0's own operation
		case errors.As(err, &pe) && pe.Rank == 0 && errors.Is(err, ErrPeerAborted):
		default:
			t.Fatalf("got %v, want %v on rank 0 and ErrPeerAborted blaming rank 0 on rank 1", err, boom)
		}
	}
	if err := gs[0].Barrier(); !errors.Is(err, boom) {
		t.Fatalf("later operation: got %v, want the first error %v", err, boom)
	}
	waitFailed(t, gs[2])
	wantPeerError(t, 2, gs[2].Barrier(), 0, ErrPeerAborted)
}

// waitFailed waits until an idle rank has heard, over its return path,
// that the group broke: otherwise its next operation might first read the
// frames of the operation it skipped.
func waitFailed(t *testing.T, g *Group) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !g.failed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the idle rank never heard of the failure")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClosedNeighbour closes one rank cleanly; the next operation on the
// others fails blaming it, and on the closed rank returns ErrClosed.
func TestClosedNeighbour(t *testing.T) {
	gs := newGroups(t, 3, func(c *Config) { c.StallTimeout = time.Minute })
	noErrors(t, onEach(gs, func(_ int, g *Group) error { return g.Barrier() }))
	gs[1].Close()
	if err := gs[1].Barrier(); err != ErrClosed {
		t.Fatalf("closed rank: got %v, want ErrClosed", err)
	}
	for r, err := range onEach([]*Group{gs[0], gs[2]}, func(_ int, g *Group) error { return g.Barrier() }) {
		wantPeerError(t, 2*r, err, 1, ErrPeerLost)
	}
}

// fakePair forms a ring of two with a real rank 0 and a rank 1 played by
// the test with the package's own handshake, returning rank 1's
// connections: send (to rank 0) and recv (from rank 0).
func fakePair(t *testing.T) (g *Group, send, recv net.Conn) {
	t.Helper()
	lns, addrs := listeners(t, 2)
	t.Cleanup(func() { lns[1].Close() })
	cfg1, err := testConfig(1, addrs).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	formed := make(chan error, 1)
	go func() {
		var err error
		g, err = New(t.Context(), testConfig(0, addrs), lns[0])
		formed <- err
	}()
	recv, err = lns[1].Accept()
	if err != nil {
		t.Fatal(err)
	}
	want := hello{version: protoVersion, chunkBytes: uint32(cfg1.ChunkBytes), from: 0, to: 1, jobID: testJob}
	if err := acceptHandshake(recv, testSecret, &want); err != nil {
		t.Fatal(err)
	}
	send, err = net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHello(&cfg1)
	if err != nil {
		t.Fatal(err)
	}
	if err := dialHandshake(send, testSecret, h); err != nil {
		t.Fatal(err)
	}
	if err := within(t, formed, "formation with a fake peer"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The fake leaves first, so rank 0's Close sees EOF at once.
		send.Close()
		recv.Close()
		g.Close()
	})
	return g, send, recv
}

// TestGarbageFrame sends rank 0 frames that are wrong in one way each while
// it all-reduces 8 floats (one 16-byte frame per step); rank 0 must fail
// with ErrProtocol blaming rank 1 and tell rank 1 why.
func TestGarbageFrame(t *testing.T) {
	good := header{typ: frameSum, step: 0, seq: 1, size: 16}
	for _, tc := range []struct {
		name string
		edit func(b *[headerBytes]byte)
	}{
		{"wrong-length", func(b *[headerBytes]byte) { b[8] = 8 }},
		{"wrong-type", func(b *[headerBytes]byte) { b[0] = byte(frameMax) }},
		{"wrong-sequence", func(b *[headerBytes]byte) { b[4] = 2 }},
		{"wrong-step", func(b *[headerBytes]byte) { b[2] = 1 }},
		{"unknown-type", func(b *[headerBytes]byte) { b[0] = 99 }},
		{"reserved-byte", func(b *[headerBytes]byte) { b[1] = 1 }},
		{"oversized", func(b *[headerBytes]byte) { b[8], b[9], b[10], b[11] = 0, 0, 0, 0x7f }},
		{"bad-abort", func(b *[headerBytes]byte) { b[0], b[8] = byte(frameAbort), 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, send, recv := fakePair(t)
			var b [headerBytes]byte
			good.put(&b)
			tc.edit(&b)
			frame := append(b[:], make([]byte, 16)...)
			if _, err := send.Write(frame); err != nil {
				t.Fatal(err)
			}
			wantPeerError(t, 0, g.AllReduceSum(make([]float32, 8)), 1, ErrProtocol)
			// Rank 0 sent its step-0 frame, then an abort on the return path.
			var got header
			if err := readUntil(recv, frameAbort, &got); err != nil {
				t.Fatalf("rank 1 was not told: %v", err)
			}
		})
	}
}

// readUntil reads frames from c until one of type typ arrives.
func readUntil(c net.Conn, typ frameType, h *header) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [headerBytes]byte
	for {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return err
		}
		var err error
		if *h, err = parseHeader(&b); err != nil {
			return err
		}
		body := make([]byte, h.size)
		if _, err := io.ReadFull(c, body); err != nil {
			return err
		}
		if h.typ == typ {
			return nil
		}
	}
}
