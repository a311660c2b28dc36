package collective

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// randomInputs gives each of n ranks m floats in [-1, 1), seeded.
func randomInputs(n, m int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	in := make([][]float32, n)
	for r := range in {
		in[r] = make([]float32, m)
		for i := range in[r] {
			in[r][i] = rng.Float32()*2 - 1
		}
	}
	return in
}

// checkReduced compares every rank's result with a float64 reference and
// requires identical bits on every rank.
func checkReduced(t *testing.T, typ frameType, in, out [][]float32) {
	t.Helper()
	n := len(in)
	for i := range out[0] {
		var sum, abs float64
		best := math.Inf(-1)
		for r := range in {
			x := float64(in[r][i])
			sum += x
			abs += math.Abs(x)
			best = max(best, x)
		}
		want, tol := sum, 4*float64(n)*abs*0x1p-24
		switch typ {
		case frameMean:
			want, tol = sum/float64(n), tol/float64(n)+0x1p-24*math.Abs(sum/float64(n))
		case frameMax:
			want, tol = best, 0
		}
		if got := float64(out[0][i]); math.Abs(got-want) > tol {
			t.Fatalf("%v element %d: got %v, want %v ± %g", typ, i, got, want, tol)
		}
		for r := 1; r < n; r++ {
			if math.Float32bits(out[r][i]) != math.Float32bits(out[0][i]) {
				t.Fatalf("%v element %d: rank %d has %v, rank 0 has %v", typ, i, r, out[r][i], out[0][i])
			}
		}
	}
}

func TestAllReduce(t *testing.T) {
	lengths := []int{0, 1, 3, 7, 1000, 1<<20 + 3}
	for _, tc := range []struct {
		name  string
		chunk int
	}{{"default-chunk", 0}, {"16-byte-chunk", 16}} {
		for n := 1; n <= 4; n++ {
			t.Run(tc.name+"/"+ranksName(n), func(t *testing.T) {
				gs := newGroups(t, n, func(c *Config) { c.ChunkBytes = tc.chunk })
				for _, m := range lengths {
					if tc.chunk != 0 && m > 1000 {
						continue // tiny chunks only exercise the pipeline's edges
					}
					for _, typ := range []frameType{frameSum, frameMean, frameMax} {
						in := randomInputs(n, m, uint64(m))
						out := make([][]float32, n)
						for r := range out {
							out[r] = append([]float32(nil), in[r]...)
						}
						noErrors(t, onEach(gs, func(r int, g *Group) error {
							switch typ {
							case frameMean:
								return g.AllReduceMean(out[r])
							case frameMax:
								return g.AllReduceMax(out[r])
							}
							return g.AllReduceSum(out[r])
						}))
						checkReduced(t, typ, in, out)
					}
				}
			})
		}
	}
}

func TestAllReduceMaxNaN(t *testing.T) {
	gs := newGroups(t, 3, nil)
	bufs := [][]float32{{1, 2}, {float32(math.NaN()), 5}, {3, 4}}
	noErrors(t, onEach(gs, func(r int, g *Group) error { return g.AllReduceMax(bufs[r]) }))
	for r, b := range bufs {
		if !math.IsNaN(float64(b[0])) || b[1] != 5 {
			t.Fatalf("rank %d: got %v, want [NaN 5]", r, b)
		}
	}
}

func TestBroadcast(t *testing.T) {
	for n := 1; n <= 4; n++ {
		t.Run(ranksName(n), func(t *testing.T) {
			gs := newGroups(t, n, func(c *Config) { c.ChunkBytes = 64 })
			for root := range n {
				for _, m := range []int{0, 1, 7, 1000} {
					in := randomInputs(n, m, uint64(root*m+1))
					noErrors(t, onEach(gs, func(r int, g *Group) error { return g.Broadcast(in[r], root) }))
					for r := range n {
						for i := range m {
							if math.Float32bits(in[r][i]) != math.Float32bits(in[root][i]) {
								t.Fatalf("root %d, %d floats: rank %d element %d is %v, root has %v", root, m, r, i, in[r][i], in[root][i])
							}
						}
					}
				}
			}
		})
	}
}

func TestAllGather(t *testing.T) {
	for n := 1; n <= 4; n++ {
		t.Run(ranksName(n), func(t *testing.T) {
			gs := newGroups(t, n, func(c *Config) { c.ChunkBytes = 64 })
			for _, m := range []int{0, 1, 5, 1000} {
				in := randomInputs(n, m, uint64(m+2))
				out := make([][]float32, n)
				for r := range out {
					out[r] = make([]float32, n*m)
				}
				noErrors(t, onEach(gs, func(r int, g *Group) error { return g.AllGather(in[r], out[r]) }))
				for r := range n {
					for src := range n {
						for i := range m {
							if got := out[r][src*m+i]; math.Float32bits(got) != math.Float32bits(in[src][i]) {
								t.Fatalf("%d floats: rank %d holds %v for rank %d element %d, want %v", m, r, got, src, i, in[src][i])
							}
						}
					}
				}
			}
		})
	}
}

// TestBarrier has one rank enter late; no rank may leave before every rank
// has entered.
func TestBarrier(t *testing.T) {
	for n := 1; n <= 4; n++ {
		t.Run(ranksName(n), func(t *testing.T) {
			gs := newGroups(t, n, nil)
			for late := range n {
				var entered atomic.Int32
				noErrors(t, onEach(gs, func(r int, g *Group) error {
					if r == late {
						time.Sleep(20 * time.Millisecond) // makes an early exit likely to show, not a timing assertion
					}
					entered.Add(1)
					if err := g.Barrier(); err != nil {
						return err
					}
					if got := entered.Load(); got != int32(n) {
						t.Errorf("rank %d left the barrier with %d of %d ranks entered", r, got, n)
					}
					return nil
				}))
			}
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	gs := newGroups(t, 2, nil)
	noErrors(t, onEach(gs, func(r int, g *Group) error {
		if err := g.Broadcast(nil, 2); !errors.Is(err, ErrInvalid) {
			t.Errorf("rank %d: Broadcast root 2: %v, want ErrInvalid", r, err)
		}
		if err := g.AllGather(make([]float32, 3), make([]float32, 5)); !errors.Is(err, ErrInvalid) {
			t.Errorf("rank %d: AllGather 3 into 5: %v, want ErrInvalid", r, err)
		}
		return g.Barrier() // the group is still usable
	}))
}

func TestSingleRank(t *testing.T) {
	g, err := New(t.Context(), Config{Rank: 0, Size: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := []float32{1, 2, 3}
	for _, op := range []func() error{
		func() error { return g.AllReduceSum(buf) },
		func() error { return g.AllReduceMean(buf) },
		func() error { return g.AllReduceMax(buf) },
		func() error { return g.Broadcast(buf, 0) },
		g.Barrier,
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}
	if buf[0] != 1 || buf[1] != 2 || buf[2] != 3 {
		t.Fatalf("buffer changed to %v", buf)
	}
	out := make([]float32, 3)
	if err := g.AllGather(buf, out); err != nil || out[2] != 3 {
		t.Fatalf("AllGather: %v %v", out, err)
	}
	boom := errors.New("watcher: rank 3 gone")
	g.Abort(boom)
	if err := g.Barrier(); err != boom {
		t.Fatalf("after Abort: %v, want %v", err, boom)
	}
	g.Close()
	if err := g.Barrier(); err != ErrClosed {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}
