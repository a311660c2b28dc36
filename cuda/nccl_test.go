//go:build cuda

package cuda

// NCCL tests. They need the NCCL library besides a GPU (the GPU machine
// has /usr/lib/x86_64-linux-gnu/libnccl.so.2). One GPU allows only
// one-rank communicators, on which a reduction is the identity: those
// tests check the plumbing (pointers, counts, stream order, errors,
// Close and Abort); the arithmetic across ranks needs two GPUs.

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"
)

// initTimeout bounds communicator set-up in the tests; a local one-rank
// init takes well under a second.
const initTimeout = 2 * time.Minute

func TestNCCLVersion(t *testing.T) {
	v, err := NCCLVersion()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NCCL %s", v)
	if !regexp.MustCompile(`^2\.\d+\.\d+$`).MatchString(v) {
		t.Errorf("NCCLVersion() = %q, want 2.x.y", v)
	}
}

// newSoloComm makes a one-rank communicator on the test device.
func newSoloComm(t *testing.T) *NCCLComm {
	t.Helper()
	id, err := NewNCCLID()
	if err != nil {
		t.Fatal(err)
	}
	if id.IsZero() {
		t.Fatal("NewNCCLID returned the zero id")
	}
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	c, err := testDev.NewNCCLComm(ctx, id, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Rank() != 0 || c.Size() != 1 {
		t.Errorf("Rank, Size = %d, %d; want 0, 1", c.Rank(), c.Size())
	}
	return c
}

func TestNCCLSoloCollectives(t *testing.T) {
	c := newSoloComm(t)
	r := newRand(t)
	const n = 4099 // not a multiple of any vector width
	x := randFloats(r, n, 3)
	got := make([]float32, n)
	do(t, func(q *Queue) error {
		b := upload(q, x)
		// A view, so that a wrong base or count would show in the rest.
		view := Sub[float32](b, 1, n-2)
		q.Fill(Sub[float32](b, 0, 1), 7)
		c.AllReduceSum(q, view)
		c.AllReduceAvg(q, view)
		c.Broadcast(q, view, 0)
		ready, done := q.NewEvent(), q.NewEvent()
		q.Record(ready)
		c.AllReduceAvgAside(q, view, ready, done)
		q.Wait(done)
		q.FreeEvent(ready)
		q.FreeEvent(done)
		// Stream order: the fill after the collectives must win.
		q.Fill(Sub[float32](b, n-1, 1), -5)
		Download(q, got, b)
		return nil
	})
	want := append([]float32{7}, x[1:n-1]...)
	want = append(want, -5)
	for i := range got {
		if got[i] != want[i] { // NaN fails too
			t.Fatalf("element %d = %g, want %g (a one-rank reduction is the identity)", i, got[i], want[i])
		}
	}
	if err := c.AsyncError(); err != nil {
		t.Errorf("AsyncError() = %v on a healthy communicator", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.AsyncError(); !errors.Is(err, ErrCommClosed) {
		t.Errorf("AsyncError after Close = %v, want ErrCommClosed", err)
	}
	err := testDev.Do(func(q *Queue) error {
		b := q.Alloc(16)
		c.AllReduceSum(q, b)
		return nil
	})
	if !errors.Is(err, ErrCommClosed) {
		t.Errorf("AllReduceSum after Close: err = %v, want ErrCommClosed", err)
	}
}

func TestNCCLArguments(t *testing.T) {
	c := newSoloComm(t)
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	for name, f := range map[string]func(q *Queue, b Buffer){
		"Broadcast from rank 1 of 1":             func(q *Queue, b Buffer) { c.Broadcast(q, b, 1) },
		"Broadcast from rank -1":                 func(q *Queue, b Buffer) { c.Broadcast(q, b, -1) },
		"AllReduceSum of 6 bytes":                func(q *Queue, b Buffer) { c.AllReduceSum(q, Buffer{ptr: b.ptr, bytes: 6}) },
		"AllReduceAvgAside without a done event": func(q *Queue, b Buffer) { c.AllReduceAvgAside(q, b, Event{}, Event{}) },
	} {
		err := testDev.Do(func(q *Queue) error {
			f(q, q.Alloc(64))
			return nil
		})
		if !errors.Is(err, ErrArgument) {
			t.Errorf("%s: err = %v, want ErrArgument", name, err)
		}
	}
	ctx := context.Background()
	id, err := NewNCCLID()
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range [][2]int{{1, 1}, {-1, 2}, {0, 0}} {
		if _, err := testDev.NewNCCLComm(ctx, id, rs[0], rs[1]); !errors.Is(err, ErrArgument) {
			t.Errorf("NewNCCLComm(rank %d, size %d): err = %v, want ErrArgument", rs[0], rs[1], err)
		}
	}
	if _, err := testDev.NewNCCLComm(ctx, NCCLID{}, 0, 1); !errors.Is(err, ErrArgument) {
		t.Errorf("NewNCCLComm(zero id): err = %v, want ErrArgument", err)
	}
}

func TestNCCLAbort(t *testing.T) {
	c := newSoloComm(t)
	errc := make(chan error, 1)
	go func() { errc <- c.Abort() }() // from a goroutine other than the device thread
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := c.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after Abort: %v", err)
	}
	err := testDev.Do(func(q *Queue) error {
		c.AllReduceAvg(q, q.Alloc(16))
		return nil
	})
	if !errors.Is(err, ErrCommClosed) {
		t.Errorf("AllReduceAvg after Abort: err = %v, want ErrCommClosed", err)
	}
	// The device itself is unharmed.
	x := []float32{1, 2, 3}
	got := make([]float32, 3)
	do(t, func(q *Queue) error {
		Download(q, got, upload(q, x))
		return nil
	})
	if got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("device round trip after Abort = %v", got)
	}
}

// TestNCCLTwoRanks reduces across two GPUs, one rank per GPU in this one
// process (NCCL refuses two ranks on one GPU).
func TestNCCLTwoRanks(t *testing.T) {
	devs, err := Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) < 2 {
		t.Skipf("a two-rank NCCL test needs two GPUs (NCCL allows one rank per GPU); %d visible", len(devs))
	}
	d1, err := Open(1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d1.Close(); err != nil {
			t.Error(err)
		}
	}()
	id, err := NewNCCLID()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	devices := []*Device{testDev, d1}
	comms := make([]*NCCLComm, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for rank, d := range devices {
		wg.Go(func() { comms[rank], errs[rank] = d.NewNCCLComm(ctx, id, rank, 2) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	r := newRand(t)
	const n = 1 << 20
	in := [][]float32{randFloats(r, n, 1), randFloats(r, n, 1)}
	type result struct{ sum, avg, bcast []float32 }
	out := make([]result, 2)
	for rank, d := range devices {
		wg.Go(func() {
			res := result{make([]float32, n), make([]float32, n), make([]float32, n)}
			errs[rank] = d.Do(func(q *Queue) error {
				c := comms[rank]
				b := q.Alloc(4 * n)
				Upload(q, b, in[rank])
				c.AllReduceSum(q, b)
				Download(q, res.sum, b)
				Upload(q, b, in[rank])
				c.AllReduceAvg(q, b)
				Download(q, res.avg, b)
				Upload(q, b, in[rank])
				c.Broadcast(q, b, 1)
				Download(q, res.bcast, b)
				q.Free(b)
				return q.Sync()
			})
			out[rank] = res
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for rank, res := range out {
		for i := range n {
			a, b := in[0][i], in[1][i]
			// One addition of two terms: the same correctly rounded sum on
			// every rank; halving is exact for these normal numbers.
			if res.sum[i] != a+b || res.avg[i] != (a+b)/2 && res.avg[i] != a/2+b/2 || res.bcast[i] != b {
				t.Fatalf("rank %d element %d: sum %g avg %g bcast %g; want %g, %g, %g",
					rank, i, res.sum[i], res.avg[i], res.bcast[i], a+b, (a+b)/2, b)
			}
		}
	}
	for _, c := range comms {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestNCCLInitTimeout starts a two-rank communicator of which only rank 0
// ever joins: NewNCCLComm must return at the deadline. The device thread
// it used stays in ncclCommInitRank, so the test opens a Device of its
// own (on the same GPU) and leaves it behind; it comes last for that.
func TestNCCLInitTimeout(t *testing.T) {
	d, err := Open(0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewNCCLID()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := d.NewNCCLComm(ctx, id, 0, 2)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NewNCCLComm with rank 1 missing = %v, %v; want context.DeadlineExceeded", c, err)
	}
	t.Log(err)
}
