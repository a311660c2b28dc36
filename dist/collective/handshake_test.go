package collective

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// formPair runs New for a ring of two whose rank 1 uses cfg1's changes,
// with a short deadline, and returns both errors.
func formPair(t *testing.T, mod1 func(*Config)) [2]error {
	t.Helper()
	lns, addrs := listeners(t, 2)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	var errs [2]error
	var wg sync.WaitGroup
	for r := range 2 {
		cfg := testConfig(r, addrs)
		if r == 1 {
			mod1(&cfg)
		}
		wg.Go(func() {
			g, err := New(ctx, cfg, lns[r])
			if err == nil {
				g.Close()
			}
			errs[r] = err
		})
	}
	wg.Wait()
	return errs
}

func TestFormationRefusesMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		text string
	}{
		{"wrong-secret", func(c *Config) { c.Secret = []byte("another secret of 32 bytes......") }, "secret"},
		{"wrong-job", func(c *Config) { c.JobID = "job-43" }, "job id"},
		{"chunk-size", func(c *Config) { c.ChunkBytes = 4096 }, "chunk bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Whichever rank notices first gives up and closes its
			// listener, so the other may see the refusal as acceptor
			// (ErrRejected) rather than as dialer (ErrAuth for a secret).
			for r, err := range formPair(t, tc.mod) {
				if !errors.Is(err, ErrFormation) || !(errors.Is(err, ErrAuth) || errors.Is(err, ErrRejected)) {
					t.Fatalf("rank %d: got %v, want ErrFormation and ErrAuth or ErrRejected", r, err)
				}
				if msg := err.Error(); !strings.Contains(msg, "missing rank") || !strings.Contains(msg, tc.text) {
					t.Fatalf("rank %d: %q should name the missing rank and say %q", r, msg, tc.text)
				}
			}
		})
	}
}

func TestFormationNamesMissingPeer(t *testing.T) {
	lns, addrs := listeners(t, 3)
	lns[2].Close() // rank 2 never shows up
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			g, err := New(ctx, testConfig(r, addrs), lns[r])
			if err == nil {
				g.Close()
			}
			errs[r] = err
		})
	}
	wg.Wait()
	// Rank 0 waits for rank 2 to dial it; rank 1 cannot dial rank 2.
	for r, want := range []string{"missing rank 2 (never connected", "missing rank 2 (dial"} {
		if !errors.Is(errs[r], context.DeadlineExceeded) || !strings.Contains(errs[r].Error(), want) {
			t.Fatalf("rank %d: got %v, want a deadline error containing %q", r, errs[r], want)
		}
	}
}

// recorder keeps a copy of everything read from its connection.
type recorder struct {
	net.Conn
	buf bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.buf.Write(p[:n])
	return n, err
}

// recordDialer runs a good dialer's handshake (rank 0 to rank 1) against
// an acceptor that records the dialer's bytes, and returns them.
func recordDialer(t *testing.T, cfg0 *Config) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	rec := &recorder{}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err
			return
		}
		defer c.Close()
		rec.Conn = c
		want := hello{version: protoVersion, chunkBytes: uint32(cfg0.ChunkBytes), from: 0, to: 1, jobID: cfg0.JobID}
		accepted <- acceptHandshake(rec, cfg0.Secret, &want)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, err := newHello(cfg0)
	if err != nil {
		t.Fatal(err)
	}
	if err := dialHandshake(c, cfg0.Secret, h); err != nil {
		t.Fatalf("recorded handshake: %v", err)
	}
	if err := within(t, accepted, "recorded handshake"); err != nil {
		t.Fatalf("recorded handshake: %v", err)
	}
	return rec.buf.Bytes()
}

// TestHandshakeReplay replays a good dialer's bytes to a new acceptor, whose
// fresh nonce makes the recorded proof worthless.
func TestHandshakeReplay(t *testing.T) {
	cfg0, err := testConfig(0, []string{"a:1", "b:2"}).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	recorded := recordDialer(t, &cfg0)
	client, server := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		want := hello{version: protoVersion, chunkBytes: uint32(cfg0.ChunkBytes), from: 0, to: 1, jobID: testJob}
		done <- acceptHandshake(server, testSecret, &want)
	}()
	if _, err := client.Write(recorded); err != nil {
		t.Fatal(err)
	}
	if err := within(t, done, "replayed handshake"); !errors.Is(err, ErrAuth) {
		t.Fatalf("acceptor: got %v, want ErrAuth", err)
	}
	// The replayer is told why: a challenge, then a reject.
	var ch [nonceBytes + macBytes]byte
	if err := readTagged(client, tagChallenge, ch[:]); err != nil {
		t.Fatal(err)
	}
	if err := readTagged(client, tagWelcome, nil); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("replayer: got %v, want a reject mentioning replay", err)
	}
}

// tcpPair is a connected loopback TCP pair.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	return client, server
}

// TestHandshakeRefusals sends an acceptor (rank 1 of 3, expecting rank 0)
// hellos that are wrong in one way each: the acceptor must fail with the
// right error and the dialer must read a reject.
func TestHandshakeRefusals(t *testing.T) {
	want := hello{version: protoVersion, chunkBytes: DefaultChunkBytes, from: 0, to: 1, jobID: testJob}
	for _, tc := range []struct {
		name  string
		edit  func(h *hello, b []byte) []byte
		err   error
		about string
	}{
		{"bad-magic", func(_ *hello, b []byte) []byte { b[0] = 'X'; return b }, ErrProtocol, "magic"},
		{"version", func(h *hello, b []byte) []byte { h.version = 2; return h.append(nil) }, ErrRejected, "version"},
		{"job", func(h *hello, b []byte) []byte { h.jobID = "other"; return h.append(nil) }, ErrRejected, "job id"},
		{"to-rank", func(h *hello, b []byte) []byte { h.to = 2; return h.append(nil) }, ErrRejected, "this is rank 1"},
		{"not-predecessor", func(h *hello, b []byte) []byte { h.from = 2; return h.append(nil) }, ErrRejected, "predecessor"},
		{"not-in-table", func(h *hello, b []byte) []byte { h.from = 1 << 30; return h.append(nil) }, ErrRejected, "predecessor"},
		{"chunk", func(h *hello, b []byte) []byte { h.chunkBytes = 64; return h.append(nil) }, ErrRejected, "chunk"},
		{"oversized-job-id", func(_ *hello, b []byte) []byte {
			b[helloFixed-2], b[helloFixed-1] = 0xff, 0xff
			return b[:helloFixed]
		}, ErrProtocol, "job id of 65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			h := want
			b := tc.edit(&h, want.append(nil))
			done := make(chan error, 1)
			go func() { done <- acceptHandshake(server, testSecret, &want) }()
			if _, err := client.Write(b); err != nil {
				t.Fatal(err)
			}
			if err := within(t, done, "acceptor"); !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.about) {
				t.Fatalf("acceptor: got %v, want %v about %q", err, tc.err, tc.about)
			}
			var ch [nonceBytes + macBytes]byte
			if err := readTagged(client, tagChallenge, ch[:]); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.about) {
				t.Fatalf("dialer: got %v, want a reject about %q", err, tc.about)
			}
		})
	}
}

// TestStrangersDoNotBreakFormation has a silent connector, a garbage
// sender and a replayer reach rank 1 before the real rank 0 dials.
func TestStrangersDoNotBreakFormation(t *testing.T) {
	lns, addrs := listeners(t, 2)
	cfg0, err := testConfig(0, addrs).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	recorded := recordDialer(t, &cfg0)
	var strangers []net.Conn
	for _, payload := range [][]byte{nil, []byte("GET / HTTP/1.1\r\n\r\n"), recorded} {
		c, err := net.Dial("tcp", addrs[1])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		strangers = append(strangers, c)
	}
	formPairWhile(t, lns, cfg0, testConfig(1, addrs), func() {
		// The garbage sender and the replayer are refused while rank 1 waits.
		for _, c := range strangers[1:] {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var ch [nonceBytes + macBytes]byte
			err := readTagged(c, tagChallenge, ch[:])
			if err == nil {
				err = readTagged(c, tagWelcome, nil)
			}
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("stranger: got %v, want a reject", err)
			}
		}
	})
}

// formPairWhile starts rank 1 (cfg1), runs meanwhile while it waits, then forms
// rank 0 (cfg0) and checks both with a barrier.
func formPairWhile(t *testing.T, lns []net.Listener, cfg0, cfg1 Config, meanwhile func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	g1 := make(chan error, 1)
	var group1 *Group
	go func() {
		var err error
		group1, err = New(ctx, cfg1, lns[1])
		g1 <- err
	}()
	meanwhile()
	group0, err := New(ctx, cfg0, lns[0])
	if err != nil {
		t.Fatalf("rank 0: %v", err)
	}
	if err := within(t, g1, "rank 1 formation"); err != nil {
		t.Fatalf("rank 1: %v", err)
	}
	gs := []*Group{group0, group1}
	defer closeAll(gs)
	noErrors(t, onEach(gs, func(_ int, g *Group) error { return g.Barrier() }))
}

func TestEvictionVictim(t *testing.T) {
	for _, tt := range []struct {
		name  string
		hosts []string
		want  int
	}{
		{"one host: the oldest", []string{"a", "a", "a"}, 0},
		{"the peer first, a flood behind it", []string{"peer", "x", "x", "x"}, 1},
		{"the busiest host, oldest of its own", []string{"y", "peer", "x", "x", "y", "x"}, 2},
		{"a tie: the host seen first", []string{"peer", "x", "y", "x", "y"}, 1},
		{"all distinct: the oldest", []string{"p", "q", "r"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := evictionVictim(tt.hosts); got != tt.want {
				t.Errorf("evictionVictim(%v) = %d, want %d", tt.hosts, got, tt.want)
			}
		})
	}
}

// A stranger on another host reconnecting as fast as it can keeps every
// handshake slot of rank 1 busy; the real rank 0 still gets in, because a
// full table drops the flooding host's connections, never the peer's.
func TestFloodFromAnotherHostDoesNotLockThePeerOut(t *testing.T) {
	lns, addrs := listeners(t, 2)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := d.Dial("tcp", addrs[1])
				if err != nil {
					continue // refused once the ring formed and the listener closed
				}
				held = append(held, c)
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(50 * time.Millisecond) // the flood fills the table first
	formPairWhile(t, lns, testConfig(0, addrs), testConfig(1, addrs), func() {})
}
