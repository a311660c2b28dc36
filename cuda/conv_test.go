//go:build cuda

package cuda

// Kernel tests of conv.go against naive references written from the
// definitions (engine/gpu's tests compare whole layers with engine/nn).
// Outputs are poisoned with NaN first; copies, gathers in the CPU's order
// and comparisons must match bit for bit, sums within Higham's bound.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

type batchWindow struct {
	n int
	g Window
}

func windows(t *testing.T, specs ...[7]int) []batchWindow {
	t.Helper()
	var out []batchWindow
	for _, s := range specs {
		g, err := NewWindow(s[1], s[2], s[3], s[4], s[5], s[6])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, batchWindow{s[0], g})
	}
	return out
}

func (b batchWindow) String() string {
	g := b.g
	return fmt.Sprintf("n%d_c%d_%dx%d_k%d_s%d_p%d", b.n, g.C, g.H, g.W, g.K, g.S, g.P)
}

// convWindows are odd batches, padding, stride 2 and 3, a kernel as large
// as the padded image, and LeNet's two layers.
func convWindows(t *testing.T) []batchWindow {
	return windows(t,
		[7]int{3, 2, 7, 9, 3, 1, 0}, [7]int{5, 3, 8, 7, 3, 2, 1}, [7]int{3, 2, 10, 9, 4, 3, 2},
		[7]int{2, 1, 4, 4, 5, 1, 1}, [7]int{37, 1, 28, 28, 5, 1, 0}, [7]int{19, 20, 12, 12, 5, 1, 0})
}

// patchIndex is where Im2Col puts input (b, c, y, x) for kernel offset
// (ki, kj) and output (oy, ox): row (c·K + ki)·K + kj, column (b·OH + oy)·OW + ox.
func patchIndex(bw batchWindow, b, c, ki, kj, oy, ox int) int {
	g := bw.g
	return ((c*g.K+ki)*g.K+kj)*bw.n*g.OutPlane() + (b*g.OH+oy)*g.OW + ox
}

// eachTap calls f for every (image, channel, kernel offset, output) and
// the input position it reads, inside is false in the padding; the order
// is engine/nn's col2im's.
func eachTap(bw batchWindow, f func(col, in int, inside bool)) {
	g := bw.g
	for b := range bw.n {
		for c := range g.C {
			for ki := range g.K {
				for kj := range g.K {
					for oy := range g.OH {
						for ox := range g.OW {
							y, x := oy*g.S-g.P+ki, ox*g.S-g.P+kj
							inside := y >= 0 && y < g.H && x >= 0 && x < g.W
							f(patchIndex(bw, b, c, ki, kj, oy, ox), ((b*g.C+c)*g.H+y)*g.W+x, inside)
						}
					}
				}
			}
		}
	}
}

func TestIm2ColCol2Im(t *testing.T) {
	r := newRand(t)
	for _, bw := range convWindows(t) {
		t.Run(bw.String(), func(t *testing.T) {
			g, n := bw.g, bw.n
			ncols := g.Patch() * n * g.OutPlane()
			x, dcols := randFloats(r, n*g.InLen(), 1), randFloats(r, ncols, 1)
			gotCols, gotDx := make([]float32, ncols), make([]float32, n*g.InLen())
			do(t, func(q *Queue) error {
				xb, dcb := upload(q, x), upload(q, dcols)
				cols, dx := poisoned(q, ncols), poisoned(q, n*g.InLen())
				q.Im2Col(cols, xb, g, n)
				q.Col2Im(dx, dcb, g, n)
				Download(q, gotCols, cols)
				Download(q, gotDx, dx)
				for _, b := range []Buffer{xb, dcb, cols, dx} {
					q.Free(b)
				}
				return nil
			})
			wantCols, wantDx := make([]float64, ncols), make([]float32, n*g.InLen())
			eachTap(bw, func(col, in int, inside bool) {
				if inside {
					wantCols[col] = float64(x[in])
					wantDx[in] += dcols[col] // float32 adds in engine/nn's order
				}
			})
			within(t, "im2col", gotCols, wantCols, func(int) float64 { return 0 })
			exact := make([]float64, len(wantDx))
			for i, v := range wantDx {
				exact[i] = float64(v)
			}
			within(t, "col2im", gotDx, exact, func(int) float64 { return 0 })
			// The adjoint identity <im2col(x), d> = <x, col2im(d)>, in float64.
			var lhs, rhs, mag float64
			for i, v := range gotCols {
				lhs += float64(v) * float64(dcols[i])
				mag += math.Abs(float64(v) * float64(dcols[i]))
			}
			for i, v := range gotDx {
				rhs += float64(x[i]) * float64(v)
			}
			if !(math.Abs(lhs-rhs) <= 1e-5*mag) {
				t.Errorf("<im2col(x), d> = %v, <x, col2im(d)> = %v", lhs, rhs)
			}
		})
	}
}

func TestCNHWToNCHW(t *testing.T) {
	r := newRand(t)
	for _, s := range [][3]int{{7, 20, 576}, {3, 5, 1}, {1, 50, 64}, {13, 3, 35}} {
		n, ch, plane := s[0], s[1], s[2]
		cnhw, bias := randFloats(r, n*ch*plane, 2), randFloats(r, ch, 1)
		cnhw[0] = float32(math.NaN()) // a NaN passes the ReLU, as in PyTorch
		for _, relu := range []bool{false, true} {
			for _, withBias := range []bool{false, true} {
				got := make([]float32, n*ch*plane)
				do(t, func(q *Queue) error {
					cb, bb, y := upload(q, cnhw), upload(q, bias), poisoned(q, n*ch*plane)
					var b Buffer
					if withBias {
						b = bb
					}
					q.CNHWToNCHW(y, cb, b, n, ch, plane, relu)
					Download(q, got, y)
					for _, b := range []Buffer{cb, bb, y} {
						q.Free(b)
					}
					return nil
				})
				bad := 0
				for b := range n {
					for o := range ch {
						for p := range plane {
							v := cnhw[(o*n+b)*plane+p]
							if withBias {
								v += bias[o]
							}
							if relu && v < 0 {
								v = 0
							}
							g := got[(b*ch+o)*plane+p]
							if g != v && !(v != v && g != g) && bad < 5 {
								t.Errorf("%v relu=%v bias=%v: y(%d,%d,%d) = %g, want %g", s, relu, withBias, b, o, p, g, v)
								bad++
							}
						}
					}
				}
			}
		}
	}
}

func TestNCHWToCNHWGrad(t *testing.T) {
	r := newRand(t)
	// 7×576 spans two blocks of a row, 50×64×41 several.
	for _, s := range [][3]int{{7, 20, 576}, {41, 50, 64}, {3, 5, 1}, {1, 1, 2049}} {
		n, ch, plane := s[0], s[1], s[2]
		size := n * ch * plane
		dy, y, prev := randFloats(r, size, 1), randFloats(r, size, 1), randFloats(r, ch, 1)
		for i := range y {
			y[i] = max(y[i], 0) // a ReLU's output: half zeros
		}
		for _, relu := range []bool{false, true} {
			for _, acc := range []bool{false, true} {
				got, gotDb := make([]float32, size), make([]float32, ch)
				do(t, func(q *Queue) error {
					dyb, yb, out := upload(q, dy), upload(q, y), poisoned(q, size)
					var db Buffer
					if acc {
						db = upload(q, prev)
					} else {
						db = poisoned(q, ch)
					}
					var mask Buffer
					if relu {
						mask = yb
					}
					q.NCHWToCNHWGrad(out, db, dyb, mask, n, ch, plane, acc)
					Download(q, got, out)
					Download(q, gotDb, db)
					for _, b := range []Buffer{dyb, yb, out, db} {
						q.Free(b)
					}
					return nil
				})
				want, wantDb, mag := make([]float64, size), make([]float64, ch), make([]float64, ch)
				if acc {
					for o := range ch {
						wantDb[o], mag[o] = float64(prev[o]), math.Abs(float64(prev[o]))
					}
				}
				for b := range n {
					for o := range ch {
						for p := range plane {
							src := (b*ch+o)*plane + p
							v := float64(dy[src])
							if relu && !(y[src] > 0) {
								v = 0
							}
							want[(o*n+b)*plane+p] = v
							wantDb[o] += v
							mag[o] += math.Abs(v)
						}
					}
				}
				tag := fmt.Sprintf("%v relu=%v acc=%v", s, relu, acc)
				within(t, "cnhw "+tag, got, want, func(int) float64 { return 0 })
				within(t, "db "+tag, gotDb, wantDb, func(i int) float64 { return gamma(n*plane+2) * mag[i] })
			}
		}
	}
}

// poolWindows are LeNet's pool (odd batch), overlapping windows with
// padding, a stride above the kernel, and sizes the floor mode cuts.
func poolWindows(t *testing.T) []batchWindow {
	return windows(t,
		[7]int{37, 20, 24, 24, 2, 2, 0}, [7]int{3, 2, 9, 7, 3, 2, 1}, [7]int{5, 2, 7, 7, 3, 1, 1},
		[7]int{2, 2, 11, 10, 4, 3, 2}, [7]int{3, 3, 7, 7, 2, 2, 0}, [7]int{2, 1, 8, 8, 2, 3, 0}, [7]int{1, 1, 5, 5, 5, 1, 0})
}

// refPool is engine/nn's MaxPool2d: the first maximum in row-major order,
// padding never wins, a NaN wins (the last one).
func refPool(bw batchWindow, x []float32) (y []float32, arg []int32) {
	g := bw.g
	y, arg = make([]float32, bw.n*g.C*g.OutPlane()), make([]int32, bw.n*g.C*g.OutPlane())
	for pl := range bw.n * g.C {
		src := x[pl*g.H*g.W:]
		for oy := range g.OH {
			for ox := range g.OW {
				y0, y1 := max(oy*g.S-g.P, 0), min(oy*g.S-g.P+g.K, g.H)
				x0, x1 := max(ox*g.S-g.P, 0), min(ox*g.S-g.P+g.K, g.W)
				best, at := float32(math.Inf(-1)), y0*g.W+x0
				for row := y0; row < y1; row++ {
					for col := x0; col < x1; col++ {
						v := src[row*g.W+col]
						if (v > best) != (v != v) {
							at = row*g.W + col
						}
						best = max(best, v)
					}
				}
				o := pl*g.OutPlane() + oy*g.OW + ox
				y[o], arg[o] = best, int32(at)
			}
		}
	}
	return y, arg
}

// poolInput is random values with ties, -Inf and NaN mixed in.
func poolInput(r *rand.Rand, n int) []float32 {
	x := randFloats(r, n, 1)
	for i := range x {
		switch r.IntN(12) {
		case 0:
			x[i] = float32(math.NaN())
		case 1, 2, 3:
			x[i] = 0.25 // ties
		case 4:
			x[i] = float32(math.Inf(-1))
		}
	}
	return x
}

func TestMaxPool(t *testing.T) {
	r := newRand(t)
	for _, bw := range poolWindows(t) {
		t.Run(bw.String(), func(t *testing.T) {
			g, n := bw.g, bw.n
			nin, nout := n*g.InLen(), n*g.C*g.OutPlane()
			x, dy := poolInput(r, nin), randFloats(r, nout, 1)
			wantY, wantArg := refPool(bw, x)
			for _, relu := range []bool{false, true} {
				gotY, gotArg, gotDx := make([]float32, nout), make([]int32, nout), make([]float32, nin)
				do(t, func(q *Queue) error {
					xb, dyb := upload(q, x), upload(q, dy)
					y, arg, dx := poisoned(q, nout), poisoned(q, nout), poisoned(q, nin)
					q.MaxPool(y, arg, xb, g, n, relu)
					var mask Buffer
					if relu {
						mask = y
					}
					q.MaxPoolBackward(dx, dyb, arg, mask, g, n)
					Download(q, gotY, y)
					Download(q, gotArg, arg)
					Download(q, gotDx, dx)
					for _, b := range []Buffer{xb, dyb, y, arg, dx} {
						q.Free(b)
					}
					return nil
				})
				wantDx := make([]float32, nin)
				bad := 0
				for o := range nout {
					w := wantY[o]
					if relu {
						w = max(w, 0) // engine/nn's ReLU: NaN stays
					}
					if (gotY[o] != w && !(w != w && gotY[o] != gotY[o])) || gotArg[o] != wantArg[o] {
						if bad < 5 {
							t.Errorf("relu=%v: output %d = %g at %d, want %g at %d", relu, o, gotY[o], gotArg[o], w, wantArg[o])
						}
						bad++
					}
					d := dy[o]
					if relu && !(w > 0) {
						d = 0 // the ReLU stopped it
					}
					pl := o / g.OutPlane()
					wantDx[pl*g.H*g.W+int(wantArg[o])] += d // in output order, as engine/nn adds
				}
				exact := make([]float64, nin)
				for i, v := range wantDx {
					exact[i] = float64(v)
				}
				within(t, fmt.Sprintf("dx relu=%v", relu), gotDx, exact, func(int) float64 { return 0 })
			}
		})
	}
}

func TestConvArgumentErrors(t *testing.T) {
	g, err := NewWindow(2, 6, 6, 3, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	skewed := g
	skewed.OW++
	pool, err := NewWindow(2, 6, 6, 2, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	padded := pool
	padded.P, padded.OH, padded.OW = 2, 5, 5 // consistent, but past PyTorch's limit
	for name, f := range map[string]func(q *Queue, small, big Buffer){
		"short cols":        func(q *Queue, small, big Buffer) { q.Im2Col(small, big, g, 3) },
		"skewed window":     func(q *Queue, small, big Buffer) { q.Col2Im(big, big, skewed, 1) },
		"negative batch":    func(q *Queue, small, big Buffer) { q.Im2Col(big, big, g, -1) },
		"short bias":        func(q *Queue, small, big Buffer) { q.CNHWToNCHW(big, big, small, 2, 64, 8, false) },
		"grad channels":     func(q *Queue, small, big Buffer) { q.NCHWToCNHWGrad(big, Buffer{}, big, Buffer{}, 1, 70000, 1, false) },
		"pool padding":      func(q *Queue, small, big Buffer) { q.MaxPool(big, big, big, padded, 1, false) },
		"short pool output": func(q *Queue, small, big Buffer) { q.MaxPoolBackward(big, small, big, Buffer{}, pool, 4) },
	} {
		err := testDev.Do(func(q *Queue) error {
			small, big := q.Alloc(16), q.Alloc(1<<20)
			defer q.Free(big)
			defer q.Free(small)
			f(q, small, big)
			return nil
		})
		if !errors.Is(err, ErrArgument) {
			t.Errorf("%s: err = %v, want ErrArgument", name, err)
		}
	}
}
