//go:build cuda

package gpu

import (
	"fmt"
	"os"
	"testing"
	"time"

	"cohort/cuda"
	"cohort/engine/nn"
)

// TestThroughput measures training steps (forward, loss, backward, SGD
// momentum) on synthetic device-resident data, the workloads of the
// PyTorch anchor (shared/anchors/torch_gpu_anchor.py). It runs only with
// COHORT_GPU_BENCH=1 and prints one line per case:
//
//	gpu-bench impl=cohort model=mlp hidden=512 batch=128 math=fp32 steps=300 ms_per_step=0.1234 samples_per_s=1037000
//	gpu-bench impl=cohort model=lenet batch=512 math=fp32 steps=200 ms_per_step=1.2345 samples_per_s=414000
//
// and, for LeNet, where one step's time goes (see benchLayers). A case
// marked feed=host takes its batch from host memory every step, as the
// trainer does (through the pinned input ring), and reads the loss back
// every 100 steps, as the trainer does at the default --log-freq.
func TestThroughput(t *testing.T) {
	if os.Getenv("COHORT_GPU_BENCH") != "1" {
		t.Skip("set COHORT_GPU_BENCH=1 to measure throughput")
	}
	cases := []struct {
		model  string
		hidden int
		benchSpec
	}{
		{"mlp", 512, benchSpec{batch: 128, steps: 300}}, {"mlp", 512, benchSpec{batch: 1024, steps: 300}},
		{"mlp", 512, benchSpec{batch: 8192, steps: 200}},
		{"mlp", 512, benchSpec{batch: 128, steps: 300, hostFeed: true}}, {"mlp", 512, benchSpec{batch: 1024, steps: 300, hostFeed: true}},
		{"mlp", 4096, benchSpec{batch: 4096, steps: 60}}, {"mlp", 4096, benchSpec{batch: 4096, steps: 100, tf32: true}},
		{"lenet", 0, benchSpec{batch: 512, steps: 200, layers: true}}, {"lenet", 0, benchSpec{batch: 512, steps: 200, tf32: true}},
		{"lenet", 0, benchSpec{batch: 512, steps: 200, hostFeed: true}},
	}
	for _, tf32 := range []bool{false, true} {
		benchGemmAlignment(t, tf32)
	}
	for _, c := range cases {
		_, seed := newRand(t)
		var cpu *nn.Sequential
		in, size := []int{784}, fmt.Sprintf(" hidden=%d", c.hidden)
		if c.model == "lenet" {
			cpu, in, size = lenetTask(t, seed).Model, []int{1, 28, 28}, ""
		} else {
			cpu = mlp(seed, 784, c.hidden, c.hidden, 10)
		}
		ms, err := benchCase(t, cpu, in, c.benchSpec)
		if err != nil {
			t.Fatalf("%s%s batch %d: %v", c.model, size, c.batch, err)
		}
		mode, feed := "fp32", "device"
		if c.tf32 {
			mode = "tf32"
		}
		if c.hostFeed {
			feed = "host"
		}
		fmt.Printf("gpu-bench impl=cohort model=%s%s batch=%d math=%s feed=%s steps=%d ms_per_step=%.4f samples_per_s=%.0f\n",
			c.model, size, c.batch, mode, feed, c.steps, ms, float64(c.batch)/ms*1e3)
	}
}

// benchSpec is one throughput case: steps timed at a batch size, in FP32
// or TF32; layers adds benchLayers' breakdown of one step, hostFeed feeds
// host batches (see TestThroughput).
type benchSpec struct {
	batch, steps           int
	tf32, layers, hostFeed bool
}

// benchCase returns the mean milliseconds per step of the CPU model cpu
// (10 classes, samples of shape in) for spec, after warm-up steps.
func benchCase(t *testing.T, cpu *nn.Sequential, in []int, spec benchSpec) (float64, error) {
	batch, steps, tf32 := spec.batch, spec.steps, spec.tf32
	r, _ := newRand(t)
	gm, err := New(testDev, cpu, Options{MaxBatch: batch, InputShape: in, Momentum: 0.9})
	if err != nil {
		return 0, err
	}
	defer gm.Close()
	x, y := randBatch(r, batch, gm.InputSize(), 10)
	var dev Input
	err = testDev.Do(func(q *cuda.Queue) error {
		dev = Input{DevX: q.Alloc(int64(len(x)) * 4), DevLabels: q.Alloc(int64(len(y)) * 4), N: batch}
		cuda.Upload(q, dev.DevX, x)
		cuda.Upload(q, dev.DevLabels, y)
		q.SetTF32(tf32)
		return nil
	})
	if err != nil {
		return 0, err
	}
	t.Cleanup(func() {
		if err := testDev.Do(func(q *cuda.Queue) error {
			q.SetTF32(false)
			q.Free(dev.DevX)
			q.Free(dev.DevLabels)
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
	feed, readEvery := dev, steps+1
	if spec.hostFeed {
		feed, readEvery = Input{X: x, Labels: y}, 100
	}
	run := func(n int) error {
		for i := range n {
			if err := gm.Step(feed, 0.01); err != nil {
				return err
			}
			if (i+1)%readEvery == 0 {
				if _, err := gm.Stats(); err != nil {
					return err
				}
			}
		}
		return gm.Sync()
	}
	if err := run(20); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := run(steps); err != nil {
		return 0, err
	}
	el := time.Since(start)
	st, err := gm.Stats()
	if err != nil {
		return 0, err
	}
	t.Logf("%d-layer model, batch %d: last loss %.4f", len(gm.layers), batch, st.LastLoss)
	if spec.layers {
		if err := benchLayers(gm, dev); err != nil {
			return 0, err
		}
	}
	return float64(el.Microseconds()) / 1e3 / float64(steps), nil
}

// benchLayers runs one step with a synchronize after each layer's pass
// and prints how long each took, launch latency included, one line each:
//
//	gpu-bench-layer batch=512 layer=3 kind=conv pass=backward ms=0.1234
//
// The sum exceeds a step of the timed loop, where launches overlap the GPU.
func benchLayers(gm *Model, in Input) error {
	var last time.Time
	lap := func(what string) {
		now := time.Now()
		fmt.Printf("gpu-bench-layer batch=%d %s ms=%.4f\n", in.N, what, float64(now.Sub(last).Microseconds())/1e3)
		last = now
	}
	gm.trace = func(q *cuda.Queue, layer int, pass string) {
		if err := q.Sync(); err != nil {
			return // the step reports it
		}
		kind := "loss"
		if layer < len(gm.layers) {
			kind = gm.layers[layer].Kind.String()
		}
		lap(fmt.Sprintf("layer=%d kind=%s pass=%s", layer, kind, pass))
	}
	defer func() { gm.trace = nil }()
	if err := gm.Sync(); err != nil {
		return err
	}
	last = time.Now()
	if err := gm.Step(in, 0.01); err != nil {
		return err
	}
	err := gm.Sync()
	lap("layer=all kind=sgd pass=update")
	return err
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
