//go:build cuda

package cuda

// Tests of norm.go and of the residual and global-average-pool operations
// against references written from the definitions in float64 (engine/gpu's
// tests compare whole layers with engine/nn). Outputs are poisoned with NaN
// first.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// normRef is the float64 reference of a training BatchNorm forward and
// backward over n×c×s values.
type normRef struct {
	mean, invstd, y, rmean, rvar []float64
	dgamma, dbeta, dx            []float64
	dxTol                        []float64 // per dx value: the size of the terms that cancel in it
}

func refNorm(n, c, s int, x, gamma, beta, rmean, rvar, dy []float32, mom, eps float64, relu bool) normRef {
	r := normRef{mean: make([]float64, c), invstd: make([]float64, c), y: make([]float64, len(x)),
		rmean: make([]float64, c), rvar: make([]float64, c), dgamma: make([]float64, c), dbeta: make([]float64, c),
		dx: make([]float64, len(x)), dxTol: make([]float64, len(x))}
	m := float64(n * s)
	at := func(b, ch, q int) int { return (b*c+ch)*s + q }
	for ch := range c {
		var sum, sq float64
		for b := range n {
			for q := range s {
				sum += float64(x[at(b, ch, q)])
			}
		}
		mu := sum / m
		for b := range n {
			for q := range s {
				d := float64(x[at(b, ch, q)]) - mu
				sq += d * d
			}
		}
		v := sq / m
		r.mean[ch], r.invstd[ch] = mu, 1/math.Sqrt(v+eps)
		r.rmean[ch] = (1-mom)*float64(rmean[ch]) + mom*mu
		r.rvar[ch] = (1-mom)*float64(rvar[ch]) + mom*v*m/(m-1)
		g := make([]float64, n*s) // dy through the ReLU
		var sg, sgx float64
		for b := range n {
			for q := range s {
				i := at(b, ch, q)
				xh := (float64(x[i]) - mu) * r.invstd[ch]
				y := float64(gamma[ch])*xh + float64(beta[ch])
				if relu && y < 0 {
					y = 0
				}
				r.y[i] = y
				if !relu || y > 0 {
					g[b*s+q] = float64(dy[i])
				}
				sg += g[b*s+q]
				sgx += g[b*s+q] * xh
			}
		}
		r.dbeta[ch], r.dgamma[ch] = sg, sgx
		k := float64(gamma[ch]) * r.invstd[ch]
		for b := range n {
			for q := range s {
				i := at(b, ch, q)
				xh := (float64(x[i]) - mu) * r.invstd[ch]
				r.dx[i] = k * (g[b*s+q] - sg/m - xh*sgx/m)
				// x̂ is computed from the mean rounded to float: its error
				// scales with |mean|·invstd, not with |x̂|.
				r.dxTol[i] = math.Abs(k) * (math.Abs(g[b*s+q]) + math.Abs(sg/m) + (math.Abs(xh)+math.Abs(mu)*r.invstd[ch])*math.Abs(sgx/m))
			}
		}
	}
	return r
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestBatchNorm runs a training forward, its backward (replacing and then
// accumulating dγ and dβ) and an evaluation forward on odd shapes:
// BatchNorm1d (s = 1), a channel of several partial-sum chunks, the
// smallest batch training accepts, and inputs far from zero mean. Bounds:
// statistics and outputs within 1e-5 relative (float32 rounding of a few
// operations, ≈1e-7), gradients sums within 1e-5 of their magnitude.
func TestBatchNorm(t *testing.T) {
	r := newRand(t)
	for _, sh := range [][3]int{{5, 3, 7}, {37, 6, 1}, {2, 1, 1}, {3, 2, 1500}, {64, 5, 64}, {9, 70, 9}} {
		for _, relu := range []bool{false, true} {
			n, c, s := sh[0], sh[1], sh[2]
			t.Run(fmt.Sprintf("n%d_c%d_s%d_relu%v", n, c, s, relu), func(t *testing.T) {
				testBatchNorm(t, r, n, c, s, relu)
			})
		}
	}
}

func testBatchNorm(t *testing.T, r *rand.Rand, n, c, s int, relu bool) {
	total := n * c * s
	x := randFloats(r, total, 2)
	for i := range x {
		x[i] += 3 // far from zero mean: a one-pass variance must not cancel badly
	}
	gamma, beta, dy := randFloats(r, c, 1.5), randFloats(r, c, 1), randFloats(r, total, 1)
	rmean, rvar := randFloats(r, c, 1), randFloats(r, c, 1)
	for i := range rvar {
		rvar[i] += 1.5
	}
	prevG, prevB := randFloats(r, c, 1), randFloats(r, c, 1)
	const mom, eps = 0.1, 1e-5
	want := refNorm(n, c, s, x, gamma, beta, rmean, rvar, dy, float64(float32(mom)), float64(float32(eps)), relu)
	var (
		y, dx, mean, invstd, rm, rv, dg, db, dg2, db2, evalY, evalRM []float32
		tracked, evalTracked                                         [1]float32
	)
	for _, p := range []*[]float32{&y, &dx, &evalY} {
		*p = make([]float32, total)
	}
	for _, p := range []*[]float32{&mean, &invstd, &rm, &rv, &dg, &db, &dg2, &db2, &evalRM} {
		*p = make([]float32, c)
	}
	do(t, func(q *Queue) error {
		bn := BatchNorm{C: c, S: s, Gamma: upload(q, gamma), Beta: upload(q, beta), Mean: poisoned(q, c), InvStd: poisoned(q, c),
			RunMean: upload(q, rmean), RunVar: upload(q, rvar), Tracked: upload(q, []float32{41}), Momentum: mom, Eps: eps}
		xb, dyb, yb, dxb := upload(q, x), upload(q, dy), poisoned(q, total), poisoned(q, total)
		dgb, dbb := poisoned(q, c), poisoned(q, c)
		q.BatchNormForward(bn, yb, xb, n, true, relu)
		Download(q, y, yb)
		Download(q, mean, bn.Mean)
		Download(q, invstd, bn.InvStd)
		Download(q, rm, bn.RunMean)
		Download(q, rv, bn.RunVar)
		Download(q, tracked[:], bn.Tracked)
		var mask Buffer
		if relu {
			mask = yb
		}
		q.BatchNormBackward(bn, dxb, dgb, dbb, dyb, xb, mask, n, false)
		Download(q, dx, dxb)
		Download(q, dg, dgb)
		Download(q, db, dbb)
		Upload(q, dgb, prevG)
		Upload(q, dbb, prevB)
		q.BatchNormBackward(bn, Buffer{}, dgb, dbb, dyb, xb, mask, n, true) // no dx
		Download(q, dg2, dgb)
		Download(q, db2, dbb)
		// Evaluation normalises with the running statistics just updated.
		q.Poison(yb)
		q.BatchNormForward(bn, yb, xb, n, false, relu)
		Download(q, evalY, yb)
		Download(q, evalRM, bn.RunMean)
		Download(q, evalTracked[:], bn.Tracked)
		return nil
	})
	rel := func(w []float64) func(int) float64 { return func(i int) float64 { return 1e-5 * (1 + math.Abs(w[i])) } }
	within(t, "mean", mean, want.mean, rel(want.mean))
	within(t, "invstd", invstd, want.invstd, rel(want.invstd))
	within(t, "running mean", rm, want.rmean, rel(want.rmean))
	within(t, "running var", rv, want.rvar, rel(want.rvar))
	within(t, "y", y, want.y, rel(want.y))
	if tracked[0] != 42 || evalTracked[0] != 42 {
		t.Errorf("num_batches_tracked %v after training, %v after evaluation; want 42 (from 41)", tracked[0], evalTracked[0])
	}
	sumTol := func(i int) float64 { return 1e-5 * float64(n*s) }
	within(t, "dbeta", db, want.dbeta, sumTol)
	within(t, "dgamma", dg, want.dgamma, sumTol)
	acc := func(prev []float32, d []float64) []float64 {
		out := widen(prev)
		for i := range out {
			out[i] += d[i]
		}
		return out
	}
	within(t, "accumulated dbeta", db2, acc(prevB, want.dbeta), sumTol)
	within(t, "accumulated dgamma", dg2, acc(prevG, want.dgamma), sumTol)
	within(t, "dx", dx, want.dx, func(i int) float64 { return 1e-5*want.dxTol[i] + 1e-30 })
	within(t, "running mean after evaluation", evalRM, widen(rm), func(int) float64 { return 0 })
	wantEval := make([]float64, total)
	for i := range wantEval {
		ch := i / s % c
		v := float64(gamma[ch])*(float64(x[i])-float64(rm[ch]))/math.Sqrt(float64(rv[ch])+float64(float32(eps))) + float64(beta[ch])
		if relu && v < 0 {
			v = 0
		}
		wantEval[i] = v
	}
	within(t, "eval y", evalY, wantEval, rel(wantEval))
}

func TestBatchNormArgumentErrors(t *testing.T) {
	for name, f := range map[string]func(q *Queue, bn BatchNorm, big Buffer){
		"one value per channel": func(q *Queue, bn BatchNorm, big Buffer) {
			bn.S = 1
			q.BatchNormForward(bn, big, big, 1, true, false)
		},
		"backward of one value": func(q *Queue, bn BatchNorm, big Buffer) {
			bn.S = 1
			q.BatchNormBackward(bn, big, bn.Gamma, bn.Beta, big, big, Buffer{}, 1, false)
		},
		"too many channels": func(q *Queue, bn BatchNorm, big Buffer) {
			bn.C, bn.S = 70000, 1
			q.BatchNormForward(bn, big, big, 2, false, false)
		},
		"short batch": func(q *Queue, bn BatchNorm, big Buffer) {
			q.BatchNormForward(bn, big, big, 1<<20, false, false)
		},
		"short statistics": func(q *Queue, bn BatchNorm, big Buffer) {
			bn.C = 64
			q.BatchNormForward(bn, big, big, 2, true, false)
		},
		"no num_batches_tracked": func(q *Queue, bn BatchNorm, big Buffer) {
			bn.Tracked = Buffer{}
			q.BatchNormForward(bn, big, big, 2, true, false)
		},
	} {
		err := testDev.Do(func(q *Queue) error {
			small, big := q.Alloc(16*4), q.Alloc(1<<20)
			defer q.Free(big)
			defer q.Free(small)
			if err := q.Err(); err != nil {
				return err
			}
			s := Sub[float32](small, 0, 4)
			bn := BatchNorm{C: 4, S: 3, Gamma: s, Beta: s, Mean: s, InvStd: s, RunMean: s, RunVar: s, Tracked: s, Momentum: 0.1, Eps: 1e-5}
			f(q, bn, big)
			return nil
		})
		if !errors.Is(err, ErrArgument) {
			t.Errorf("%s: err = %v, want ErrArgument", name, err)
		}
	}
}

func TestAddAct(t *testing.T) {
	r := newRand(t)
	n := 1<<20 + 7 // several grid-stride passes, and a partial block
	a, b := randFloats(r, n, 1), randFloats(r, n, 1)
	for _, relu := range []bool{false, true} {
		got, inPlace := make([]float32, n), make([]float32, n)
		do(t, func(q *Queue) error {
			ab, bb, y := upload(q, a), upload(q, b), poisoned(q, n)
			q.AddAct(y, ab, bb, n, relu)
			Download(q, got, y)
			q.AddAct(ab, ab, bb, n, relu)
			Download(q, inPlace, ab)
			for _, buf := range []Buffer{ab, bb, y} {
				q.Free(buf)
			}
			return nil
		})
		want := make([]float64, n)
		for i := range want {
			v := a[i] + b[i] // one float32 add: must match exactly
			if relu && v < 0 {
				v = 0
			}
			want[i] = float64(v)
		}
		within(t, fmt.Sprintf("add relu=%v", relu), got, want, func(int) float64 { return 0 })
		within(t, fmt.Sprintf("add in place relu=%v", relu), inPlace, want, func(int) float64 { return 0 })
	}
}

func TestGlobalAvgPool(t *testing.T) {
	r := newRand(t)
	for _, sh := range [][2]int{{7 * 64, 64}, {3, 49}, {5000, 1}, {2, 1023}} {
		planes, plane := sh[0], sh[1]
		x, dy := randFloats(r, planes*plane, 1), randFloats(r, planes, 1)
		got, gotDx := make([]float32, planes), make([]float32, planes*plane)
		do(t, func(q *Queue) error {
			xb, dyb, y, dx := upload(q, x), upload(q, dy), poisoned(q, planes), poisoned(q, planes*plane)
			q.GlobalAvgPool(y, xb, planes, plane)
			q.GlobalAvgPoolBackward(dx, dyb, planes, plane)
			Download(q, got, y)
			Download(q, gotDx, dx)
			for _, b := range []Buffer{xb, dyb, y, dx} {
				q.Free(b)
			}
			return nil
		})
		// engine/nn's order and rounding: float32 sums in order, times 1/plane.
		inv := 1 / float32(plane)
		want, wantDx := make([]float64, planes), make([]float64, planes*plane)
		for p := range planes {
			var sum float32
			for _, v := range x[p*plane : (p+1)*plane] {
				sum += v
			}
			want[p] = float64(sum * inv)
			for j := range plane {
				wantDx[p*plane+j] = float64(dy[p] * inv)
			}
		}
		within(t, fmt.Sprintf("avgpool %d×%d", planes, plane), got, want, func(int) float64 { return 0 })
		within(t, fmt.Sprintf("avgpool backward %d×%d", planes, plane), gotDx, wantDx, func(int) float64 { return 0 })
	}
}

// TestBatchNormSync runs a synchronised BatchNorm as rank 0 of two, the
// other rank's sums added by Sync on the host: outputs, running
// statistics and dx must be those of the two ranks' batches together
// (the float64 reference over both), dγ and dβ this rank's own share.
func TestBatchNormSync(t *testing.T) {
	r := newRand(t)
	const n, c, s, mom, eps = 6, 4, 9, 0.1, 1e-5
	total := n * c * s
	x, x2 := randFloats(r, total, 2), randFloats(r, total, 2)
	for i := range x2 {
		x2[i] += 1 // the other rank's batch has another mean
	}
	dy, dy2 := randFloats(r, total, 1), randFloats(r, total, 1)
	gamma, beta := randFloats(r, c, 1.5), randFloats(r, c, 1)
	rmean, rvar := make([]float32, c), make([]float32, c)
	for i := range rvar {
		rvar[i] = 1
	}
	want := refNorm(2*n, c, s, append(append([]float32{}, x...), x2...), gamma, beta, rmean, rvar,
		append(append([]float32{}, dy...), dy2...), float64(float32(mom)), float64(float32(eps)), true)
	// The other rank's totals: forward Σx, Σx²; backward Σg, Σg·x̂ with
	// the joint statistics; then its count.
	other := [2][]float32{make([]float32, 2*c+1), make([]float32, 2*c+1)}
	local := [2][]float64{make([]float64, c), make([]float64, c)} // this rank's dβ, dγ
	for ch := range c {
		var f1, f2, b1, b2 float64
		for b := range n {
			for q := range s {
				i := (b*c+ch)*s + q
				v := float64(x2[i])
				f1, f2 = f1+v, f2+v*v
				if want.y[total+i] > 0 {
					b1 += float64(dy2[i])
					b2 += float64(dy2[i]) * (v - want.mean[ch]) * want.invstd[ch]
				}
				if want.y[i] > 0 {
					local[0][ch] += float64(dy[i])
					local[1][ch] += float64(dy[i]) * (float64(x[i]) - want.mean[ch]) * want.invstd[ch]
				}
			}
		}
		other[0][ch], other[0][c+ch], other[1][ch], other[1][c+ch] = float32(f1), float32(f2), float32(b1), float32(b2)
	}
	other[0][2*c], other[1][2*c] = n*s, n*s
	calls := 0
	y, dx, rm, rv, dg, db := make([]float32, total), make([]float32, total), make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
	do(t, func(q *Queue) error {
		bn := BatchNorm{C: c, S: s, Gamma: upload(q, gamma), Beta: upload(q, beta), Mean: poisoned(q, c), InvStd: poisoned(q, c),
			RunMean: upload(q, rmean), RunVar: upload(q, rvar), Tracked: upload(q, []float32{0}), Momentum: mom, Eps: eps,
			Sync: func(q *Queue, totals Buffer) {
				host := make([]float32, 2*c+1)
				Download(q, host, totals)
				for i := range host {
					host[i] += other[calls][i]
				}
				Upload(q, totals, host)
				calls++
			}}
		xb, dyb, yb, dxb, dgb, dbb := upload(q, x), upload(q, dy), poisoned(q, total), poisoned(q, total), poisoned(q, c), poisoned(q, c)
		q.BatchNormForward(bn, yb, xb, n, true, true)
		q.BatchNormBackward(bn, dxb, dgb, dbb, dyb, xb, yb, n, false)
		for _, d := range []struct {
			dst []float32
			src Buffer
		}{{y, yb}, {dx, dxb}, {rm, bn.RunMean}, {rv, bn.RunVar}, {dg, dgb}, {db, dbb}} {
			Download(q, d.dst, d.src)
		}
		return nil
	})
	if calls != 2 {
		t.Fatalf("Sync called %d times, want 2 (forward and backward)", calls)
	}
	rel := func(w []float64) func(int) float64 { return func(i int) float64 { return 1e-5 * (1 + math.Abs(w[i])) } }
	within(t, "y", y, want.y[:total], rel(want.y))
	within(t, "running mean", rm, want.rmean, rel(want.rmean))
	within(t, "running var", rv, want.rvar, rel(want.rvar))
	within(t, "dx", dx, want.dx[:total], func(i int) float64 { return 1e-5*want.dxTol[i] + 1e-30 })
	sumTol := func(int) float64 { return 1e-5 * float64(n*s) }
	within(t, "dbeta (this rank's)", db, local[0], sumTol)
	within(t, "dgamma (this rank's)", dg, local[1], sumTol)
}
