//go:build cuda

package cuda

// These tests need a GPU (gorgonia.org/cu exits the process at init
// without one); scripts/gpu-check.sh runs them on the GPU machine. Every
// output buffer is poisoned with NaN before an operation writes it, inputs
// are fresh random numbers (the seed is logged), and no NaN ever passes a
// comparison.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// testDev is the one device every test shares: opening a context costs
// hundreds of milliseconds.
var testDev *Device

func TestMain(m *testing.M) {
	d, err := Open(0, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cuda tests need a GPU:", err)
		os.Exit(1)
	}
	testDev = d
	code := m.Run()
	if err := d.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close device:", err)
		code = 1
	}
	os.Exit(code)
}

// newRand returns a generator with a fresh seed, logged for reproduction.
func newRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0xc0de))
}

func randFloats(r *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32((2*r.Float64() - 1) * scale)
	}
	return out
}

// do runs f on the test device and fails the test on any error, including
// one that only shows at the final synchronize.
func do(t *testing.T, f func(q *Queue) error) {
	t.Helper()
	if err := testDev.Do(func(q *Queue) error {
		if err := f(q); err != nil {
			return err
		}
		return q.Sync()
	}); err != nil {
		t.Fatal(err)
	}
}

// upload allocates a buffer holding src.
func upload[T Elem](q *Queue, src []T) Buffer {
	b := q.Alloc(int64(len(src)) * sizeOf[T]())
	Upload(q, b, src)
	return b
}

// poisoned allocates n float32s set to NaN.
func poisoned(q *Queue, n int) Buffer {
	b := q.Alloc(int64(n) * 4)
	q.Poison(b)
	return b
}

// within fails t unless |got-want| ≤ tol[i] for every i; NaN never passes.
func within(t *testing.T, what string, got []float32, want []float64, tol func(i int) float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i, g := range got {
		d := math.Abs(float64(g) - want[i])
		if !(d <= tol(i)) { // written so that NaN fails
			if bad < 5 {
				t.Errorf("%s[%d] = %g, want %g (±%.3g)", what, i, g, want[i], tol(i))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values out of bounds", what, bad, len(got))
	}
}

// γ(k) bounds the relative error of a k-term float32 sum (Higham's γ_k).
func gamma(k int) float64 { return float64(k) * 0x1p-24 / (1 - float64(k)*0x1p-24) }

func TestDescribeAndDevices(t *testing.T) {
	devs, err := Devices()
	if err != nil || len(devs) == 0 {
		t.Fatalf("Devices() = %v, %v", devs, err)
	}
	if !Available() {
		t.Error("Available() = false with a device open")
	}
	s := Describe()
	t.Log(s)
	if !strings.Contains(s, "driver") || !strings.Contains(s, devs[0].Name) {
		t.Errorf("Describe() = %q, want the driver and %q", s, devs[0].Name)
	}
	if _, err := Open(len(devs), Options{}); !errors.Is(err, ErrNoDevice) {
		t.Errorf("Open(%d): err = %v, want ErrNoDevice", len(devs), err)
	}
	var jit []string
	do(t, func(q *Queue) error { jit = q.KernelsJIT(); return nil })
	t.Logf("kernel modules JIT-compiled from PTX: %v", jit)
}

// refGemm is op(A)·op(B)·alpha + beta·C in float64, row-major, and the
// matching scale Σ|alpha·a·b| + |beta·c| of each element for error bounds.
func refGemm(transA, transB bool, m, n, k int, alpha float32, a, b []float32, beta float32, c []float32) (out, mag []float64) {
	at := func(i, p int) float64 {
		if transA {
			return float64(a[p*m+i])
		}
		return float64(a[i*k+p])
	}
	bt := func(p, j int) float64 {
		if transB {
			return float64(b[j*k+p])
		}
		return float64(b[p*n+j])
	}
	out, mag = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, g float64
			for p := range k {
				v := at(i, p) * bt(p, j)
				s += v
				g += math.Abs(v)
			}
			out[i*n+j] = float64(alpha) * s
			mag[i*n+j] = math.Abs(float64(alpha)) * g
			if beta != 0 {
				out[i*n+j] += float64(beta) * float64(c[i*n+j])
				mag[i*n+j] += math.Abs(float64(beta) * float64(c[i*n+j]))
			}
		}
	}
	return out, mag
}

func TestGemm(t *testing.T) {
	r := newRand(t)
	shapes := [][3]int{{37, 53, 129}, {128, 512, 784}, {1, 10, 512}, {64, 1, 3}}
	for _, s := range shapes {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, beta := range []float32{0, 0.5} {
					name := fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v/beta=%v", s[0], s[1], s[2], ta, tb, beta)
					t.Run(name, func(t *testing.T) {
						m, n, k := s[0], s[1], s[2]
						a, b := randFloats(r, m*k, 1), randFloats(r, k*n, 1)
						c := randFloats(r, m*n, 1)
						got := make([]float32, m*n)
						do(t, func(q *Queue) error {
							da, db := upload(q, a), upload(q, b)
							var dc Buffer
							if beta == 0 {
								dc = poisoned(q, m*n) // beta = 0 must not read C
							} else {
								dc = upload(q, c)
							}
							q.Gemm(ta, tb, m, n, k, 1.5, da, db, beta, dc)
							Download(q, got, dc)
							q.Free(da)
							q.Free(db)
							q.Free(dc)
							return nil
						})
						want, mag := refGemm(ta, tb, m, n, k, 1.5, a, b, beta, c)
						within(t, "C", got, want, func(i int) float64 { return 2*gamma(k+1)*mag[i] + 1e-30 })
					})
				}
			}
		}
	}
}

func TestGemmTF32(t *testing.T) {
	r := newRand(t)
	m, n, k := 96, 80, 256
	a, b := randFloats(r, m*k, 1), randFloats(r, k*n, 1)
	got := make([]float32, m*n)
	do(t, func(q *Queue) error {
		q.SetTF32(true)
		defer q.SetTF32(false)
		da, db, dc := upload(q, a), upload(q, b), poisoned(q, m*n)
		q.Gemm(false, false, m, n, k, 1, da, db, 0, dc)
		Download(q, got, dc)
		return nil
	})
	want, mag := refGemm(false, false, m, n, k, 1, a, b, 0, nil)
	// TF32 keeps 10 mantissa bits of each input: relative error ≈ 2^-11 per
	// product, far above FP32's, so the bound is on the magnitude sum.
	within(t, "C (tf32)", got, want, func(i int) float64 { return 0x1p-9 * mag[i] })
	// FP32 also meets that bound; the error's size shows which math ran
	// (FP32 ≈ 1e-7 of the magnitude, TF32 ≈ 1e-4).
	worst := 0.0
	for i := range got {
		worst = max(worst, math.Abs(float64(got[i])-want[i])/mag[i])
	}
	t.Logf("largest error %.2g of the magnitude sum", worst)
}

func TestBiasAct(t *testing.T) {
	r := newRand(t)
	// 4099×300 is more than one grid of threads (gridFor caps it), so the
	// grid-stride loop's later passes are checked too.
	rows, cols := 4099, 300
	y, bias := randFloats(r, rows*cols, 2), randFloats(r, cols, 1)
	for _, relu := range []bool{false, true} {
		got := make([]float32, rows*cols)
		do(t, func(q *Queue) error {
			dy, db := upload(q, y), upload(q, bias)
			q.BiasAct(dy, db, rows, cols, relu)
			Download(q, got, dy)
			return nil
		})
		want := make([]float64, rows*cols)
		for i := range want {
			v := y[i] + bias[i%cols] // one float32 add: must match exactly
			if relu && v < 0 {
				v = 0
			}
			want[i] = float64(v)
		}
		within(t, fmt.Sprintf("bias_act relu=%v", relu), got, want, func(int) float64 { return 0 })
	}
}

func TestReLUBackward(t *testing.T) {
	r := newRand(t)
	n := 1<<21 + 13 // several grid-stride passes, and a partial block
	y, dy := randFloats(r, n, 1), randFloats(r, n, 1)
	for i := range y {
		y[i] = max(y[i], 0) // a ReLU output: half zeros
	}
	got := make([]float32, n)
	do(t, func(q *Queue) error {
		dyb, yb, dx := upload(q, dy), upload(q, y), poisoned(q, n)
		q.ReLUBackward(dx, dyb, yb, n)
		Download(q, got, dx)
		return nil
	})
	want := make([]float64, n)
	for i := range want {
		if y[i] > 0 {
			want[i] = float64(dy[i])
		}
	}
	within(t, "relu_backward", got, want, func(int) float64 { return 0 })
}

func TestColSum(t *testing.T) {
	r := newRand(t)
	for _, s := range [][2]int{{1000, 45}, {128, 512}, {8192, 10}, {3, 33}} {
		rows, cols := s[0], s[1]
		dy, prev := randFloats(r, rows*cols, 1), randFloats(r, cols, 1)
		for _, acc := range []bool{false, true} {
			got := make([]float32, cols)
			do(t, func(q *Queue) error {
				dyb := upload(q, dy)
				var db Buffer
				if acc {
					db = upload(q, prev)
				} else {
					db = poisoned(q, cols)
				}
				q.ColSum(db, dyb, rows, cols, acc)
				Download(q, got, db)
				return nil
			})
			want, mag := make([]float64, cols), make([]float64, cols)
			for c := range cols {
				if acc {
					want[c], mag[c] = float64(prev[c]), math.Abs(float64(prev[c]))
				}
				for i := range rows {
					want[c] += float64(dy[i*cols+c])
					mag[c] += math.Abs(float64(dy[i*cols+c]))
				}
			}
			within(t, fmt.Sprintf("col_sum %dx%d acc=%v", rows, cols, acc), got, want,
				func(i int) float64 { return gamma(rows+1) * mag[i] })
		}
	}
}

func TestSoftmaxXent(t *testing.T) {
	r := newRand(t)
	for _, s := range [][2]int{{300, 10}, {77, 100}, {5, 1}} {
		rows, cols := s[0], s[1]
		logits := randFloats(r, rows*cols, 8)
		labels := make([]int32, rows)
		for i := range labels {
			labels[i] = int32(r.IntN(cols))
		}
		if cols > 1 {
			logits[0*cols+int(labels[0])] = 1e4 // large logits stay finite
			other := (int(labels[1]) + 1) % cols
			logits[1*cols+other] = logits[1*cols+int(labels[1])] + 5 // a wrong row
			other = (int(labels[2]) + 1) % cols
			logits[2*cols+other] = logits[2*cols+int(labels[2])] // a tie counts as correct
			for j := range cols {
				logits[2*cols+j] = min(logits[2*cols+j], logits[2*cols+int(labels[2])])
			}
		}
		scale := 1 / float32(rows)
		gotLoss, gotGrad := make([]float32, rows), make([]float32, rows*cols)
		gotCorrect := make([]int32, rows)
		do(t, func(q *Queue) error {
			lb, yb := upload(q, logits), upload(q, labels)
			grad, loss := poisoned(q, rows*cols), poisoned(q, rows)
			correct := poisoned(q, rows) // int32s, poisoned with NaN's bits
			q.SoftmaxXent(lb, yb, grad, loss, correct, rows, cols, scale)
			Download(q, gotLoss, loss)
			Download(q, gotGrad, grad)
			Download(q, gotCorrect, correct)
			return nil
		})
		wantLoss, wantGrad := make([]float64, rows), make([]float64, rows*cols)
		for i := range rows {
			x := logits[i*cols : (i+1)*cols]
			m := float64(x[0])
			above := 0
			for _, v := range x {
				m = max(m, float64(v))
				if v > x[labels[i]] {
					above++
				}
			}
			var sum float64
			for _, v := range x {
				sum += math.Exp(float64(v) - m)
			}
			wantLoss[i] = math.Log(sum) - (float64(x[labels[i]]) - m)
			for j, v := range x {
				wantGrad[i*cols+j] = math.Exp(float64(v)-m) / sum * float64(scale)
			}
			wantGrad[i*cols+int(labels[i])] -= float64(scale)
			want := int32(0)
			if above == 0 {
				want = 1
			}
			if gotCorrect[i] != want {
				t.Errorf("%dx%d row %d: correct = %d, want %d", rows, cols, i, gotCorrect[i], want)
			}
		}
		tag := fmt.Sprintf("%dx%d", rows, cols)
		within(t, "loss "+tag, gotLoss, wantLoss, func(i int) float64 { return 1e-5 * (1 + math.Abs(wantLoss[i])) })
		within(t, "dlogits "+tag, gotGrad, wantGrad, func(int) float64 { return 1e-6 * float64(scale) })
	}
}

func TestLossReduce(t *testing.T) {
	r := newRand(t)
	rows := 3000
	loss := randFloats(r, rows, 3)
	correct := make([]int32, rows)
	var sum, hits float64
	for i := range rows {
		loss[i] = float32(math.Abs(float64(loss[i])))
		sum += float64(loss[i])
		if r.IntN(3) == 0 {
			correct[i] = 1
			hits++
		}
	}
	got := make([]float64, StatsLen)
	do(t, func(q *Queue) error {
		lb, cb := upload(q, loss), upload(q, correct)
		stats := upload(q, make([]float64, StatsLen))
		q.LossReduce(lb, cb, stats, rows)
		q.LossReduce(lb, cb, stats, rows) // the sums accumulate
		Download(q, got, stats)
		return nil
	})
	want := []float64{sum / float64(rows), 2 * sum, 2 * hits}
	for i := range want {
		if !(math.Abs(got[i]-want[i]) <= 1e-12*math.Abs(want[i])) {
			t.Errorf("stats[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// refSGD is engine/optim's update with its rounding: every product rounded
// to float32 before it is added.
func refSGD(w, g, buf []float32, lr, m, wd float32, nesterov bool) {
	for i := range w {
		d := g[i] + float32(wd*w[i])
		if buf != nil {
			b := float32(m*buf[i]) + d
			buf[i] = b
			if nesterov {
				d += float32(m * b)
			} else {
				d = b
			}
		}
		w[i] -= float32(lr * d)
	}
}

func TestSGD(t *testing.T) {
	r := newRand(t)
	n := 1<<20 + 7 // more than one grid-stride pass
	cases := []struct {
		momentum, wd float32
		nesterov     bool
	}{{0, 0, false}, {0, 1e-4, false}, {0.9, 1e-4, false}, {0.9, 5e-4, true}}
	for _, c := range cases {
		w := randFloats(r, n, 0.1)
		wantW := append([]float32(nil), w...)
		var wantBuf []float32
		if c.momentum != 0 {
			wantBuf = make([]float32, n)
		}
		grads := [][]float32{randFloats(r, n, 1), randFloats(r, n, 1), randFloats(r, n, 1)}
		gotW, gotBuf := make([]float32, n), make([]float32, n)
		do(t, func(q *Queue) error {
			wb := upload(q, w)
			var bb Buffer
			if c.momentum != 0 {
				bb = upload(q, make([]float32, n))
			}
			for _, g := range grads {
				gb := upload(q, g)
				q.SGD(wb, gb, bb, n, 0.05, c.momentum, c.wd, c.nesterov)
				q.Free(gb)
			}
			Download(q, gotW, wb)
			if c.momentum != 0 {
				Download(q, gotBuf, bb)
			}
			return nil
		})
		for _, g := range grads {
			refSGD(wantW, g, wantBuf, 0.05, c.momentum, c.wd, c.nesterov)
		}
		exact := func(what string, got, want []float32) {
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Errorf("%+v: %s[%d] = %g, want %g (bit-exact)", c, what, i, got[i], want[i])
					return
				}
			}
		}
		exact("w", gotW, wantW)
		if c.momentum != 0 {
			exact("momentum buffer", gotBuf, wantBuf)
		}
	}
}

func TestPoolAndCopies(t *testing.T) {
	do(t, func(q *Queue) error {
		a := q.Alloc(4096)
		q.Free(a)
		b := q.Alloc(4096)
		if a != b {
			return fmt.Errorf("pool did not reuse a freed buffer: %v then %v", a, b)
		}
		q.Free(b)
		return nil
	})
	err := testDev.Do(func(q *Queue) error {
		b := q.Alloc(4096)
		q.Free(b)
		q.Free(b) // would hand b to the next two Allocs
		return nil
	})
	if !errors.Is(err, ErrArgument) {
		t.Errorf("second Free: err = %v, want ErrArgument", err)
	}
	err = testDev.Do(func(q *Queue) error {
		b := q.Alloc(4096)
		q.Free(Sub[float32](b, 1, 10)) // a view is not an allocation
		return nil
	})
	if !errors.Is(err, ErrArgument) {
		t.Errorf("Free of a view: err = %v, want ErrArgument", err)
	}
	src := []int32{1, 2, 3, 4, 5, 6, 7, 8}
	got := make([]int32, 3)
	do(t, func(q *Queue) error {
		b := upload(q, src)
		c := q.Alloc(64)
		q.Copy(c, Sub[int32](b, 4, 3))
		Download(q, got, c)
		return nil
	})
	if fmt.Sprint(got) != "[5 6 7]" {
		t.Errorf("copy of a view = %v, want [5 6 7]", got)
	}
	err = testDev.Do(func(q *Queue) error {
		b := q.Alloc(8)
		Upload(q, b, make([]float32, 3)) // 12 bytes into 8
		return nil
	})
	if !errors.Is(err, ErrArgument) {
		t.Errorf("oversized upload: err = %v, want ErrArgument", err)
	}
}
