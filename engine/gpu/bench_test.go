//go:build cuda

package gpu

import (
	"fmt"
	"os"
	"testing"
	"time"

	"cohort/cuda"
)

// TestThroughput measures training steps (forward, loss, backward, SGD
// momentum) on synthetic device-resident data, the workloads of the
// PyTorch anchor (shared/anchors/torch_gpu_anchor.py). It runs only with
// COHORT_GPU_BENCH=1 and prints one line per case:
//
//	gpu-bench impl=cohort model=mlp hidden=512 batch=128 math=fp32 steps=300 ms_per_step=0.1234 samples_per_s=1037000
func TestThroughput(t *testing.T) {
	if os.Getenv("COHORT_GPU_BENCH") != "1" {
		t.Skip("set COHORT_GPU_BENCH=1 to measure throughput")
	}
	cases := []struct {
		hidden, batch, steps int
		tf32                 bool
	}{
		{512, 128, 300, false}, {512, 1024, 300, false}, {512, 8192, 200, false},
		{4096, 4096, 60, false}, {4096, 4096, 100, true},
	}
	for _, tf32 := range []bool{false, true} {
		benchGemmAlignment(t, tf32)
	}
	for _, c := range cases {
		ms, err := benchCase(t, c.hidden, c.batch, c.steps, c.tf32)
		if err != nil {
			t.Fatalf("hidden %d batch %d: %v", c.hidden, c.batch, err)
		}
		mode := "fp32"
		if c.tf32 {
			mode = "tf32"
		}
		fmt.Printf("gpu-bench impl=cohort model=mlp hidden=%d batch=%d math=%s steps=%d ms_per_step=%.4f samples_per_s=%.0f\n",
			c.hidden, c.batch, mode, c.steps, ms, float64(c.batch)/ms*1e3)
	}
}

// benchCase returns the mean milliseconds per step of 784-h-h-10 at batch
// size batch, after warm-up steps.
func benchCase(t *testing.T, hidden, batch, steps int, tf32 bool) (float64, error) {
	r, seed := newRand(t)
	gm, err := New(testDev, mlp(seed, 784, hidden, hidden, 10), Options{MaxBatch: batch, Momentum: 0.9})
	if err != nil {
		return 0, err
	}
	defer gm.Close()
	x, y := randBatch(r, batch, 784, 10)
	var in Input
	err = testDev.Do(func(q *cuda.Queue) error {
		in = Input{DevX: q.Alloc(int64(len(x)) * 4), DevLabels: q.Alloc(int64(len(y)) * 4), N: batch}
		cuda.Upload(q, in.DevX, x)
		cuda.Upload(q, in.DevLabels, y)
		q.SetTF32(tf32)
		return nil
	})
	if err != nil {
		return 0, err
	}
	t.Cleanup(func() {
		if err := testDev.Do(func(q *cuda.Queue) error {
			q.SetTF32(false)
			q.Free(in.DevX)
			q.Free(in.DevLabels)
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
	for range 20 {
		if err := gm.Step(in, 0.01); err != nil {
			return 0, err
		}
	}
	if err := gm.Sync(); err != nil {
		return 0, err
	}
	start := time.Now()
	for range steps {
		if err := gm.Step(in, 0.01); err != nil {
			return 0, err
		}
	}
	if err := gm.Sync(); err != nil {
		return 0, err
	}
	el := time.Since(start)
	st, err := gm.Stats()
	if err != nil {
		return 0, err
	}
	t.Logf("hidden %d batch %d: last loss %.4f", hidden, batch, st.LastLoss)
	return float64(el.Microseconds()) / 1e3 / float64(steps), nil
}

// benchGemmAlignment times a 4096³ GEMM on 16-byte-aligned operands and on
// operands 8 bytes off, as the flat parameter layout places every weight
// matrix (a bias of even length comes first). It prints one line per case:
//
//	gpu-bench-gemm size=4096 math=fp32 offset_bytes=8 ms=2.8000
//
// A large gap says the layout should pad each parameter to 16 bytes.
func benchGemmAlignment(t *testing.T, tf32 bool) {
	const size, reps = 4096, 10
	mode := "fp32"
	if tf32 {
		mode = "tf32"
	}
	for _, off := range []int{0, 2} { // in floats
		var el time.Duration
		err := testDev.Do(func(q *cuda.Queue) error {
			q.SetTF32(tf32)
			defer q.SetTF32(false)
			bufs := make([]cuda.Buffer, 3)
			for i := range bufs {
				bufs[i] = q.Alloc(4 * int64(size*size+off))
				q.Fill(bufs[i], 1)
				defer q.Free(bufs[i])
			}
			if err := q.Err(); err != nil {
				return err // no views of buffers that were not made
			}
			a, b, c := cuda.Sub[float32](bufs[0], off, size*size), cuda.Sub[float32](bufs[1], off, size*size), cuda.Sub[float32](bufs[2], off, size*size)
			for range 2 { // warm-up: kernel selection, clocks
				q.Gemm(false, true, size, size, size, 1, a, b, 0, c)
			}
			if err := q.Sync(); err != nil {
				return err
			}
			start := time.Now()
			for range reps {
				q.Gemm(false, true, size, size, size, 1, a, b, 0, c)
			}
			err := q.Sync()
			el = time.Since(start)
			return err
		})
		if err != nil {
			t.Fatalf("gemm %s offset %d: %v", mode, off, err)
		}
		fmt.Printf("gpu-bench-gemm size=%d math=%s offset_bytes=%d ms=%.4f\n", size, mode, 4*off, float64(el.Microseconds())/1e3/reps)
	}
}
