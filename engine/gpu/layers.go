//go:build cuda

package gpu

import "cohort/cuda"

// layerBufs are one layer's device buffers besides its output activation,
// sized for the model's largest batch. A Model owns them; tests make them
// for a single layer.
type layerBufs struct {
	// cols is a convolution's patch matrix from the forward pass, which
	// the weight gradient reads; the patch gradient overwrites it after.
	cols cuda.Buffer
	// arg is a pool's int32 argmax per output.
	arg cuda.Buffer
	// work is a convolution's channel-major (CNHW) output, then its
	// output gradient. It is only live inside one layer's forward or
	// backward, so every convolution of a model shares one.
	work cuda.Buffer
	// stats are a BatchNorm's mean and 1/std (Channels floats each) as
	// its last forward pass used them, which its backward pass reads.
	stats cuda.Buffer
	// sync, set by Model.SyncBatchNorm, sums a BatchNorm's statistics
	// over the ranks (cuda.BatchNorm.Sync).
	sync func(q *cuda.Queue, totals cuda.Buffer)
}

// workLen is the float32s a convolution's work buffer needs for batches
// of maxBatch samples: its output, channel-major (0 for other layers).
func (l *layerSpec) workLen(maxBatch int) int {
	if l.Kind != convLayer {
		return 0
	}
	return maxBatch * l.Out
}

// allocBufs makes l's buffers for batches of up to maxBatch samples, with
// work shared (see layerBufs); alloc hands out buffers of 4-byte values.
func (l *layerSpec) allocBufs(maxBatch int, work cuda.Buffer, alloc func(values int) cuda.Buffer) layerBufs {
	var b layerBufs
	switch l.Kind {
	case convLayer:
		b.cols = alloc(l.Win.Patch() * maxBatch * l.Win.OutPlane())
		b.work = work
	case poolLayer:
		b.arg = alloc(maxBatch * l.Out)
	case normLayer:
		b.stats = alloc(2 * l.Channels)
	}
	return b
}

// biasOf is l's bias in a flat buffer, or the zero Buffer without a bias.
func (l *layerSpec) biasOf(flat cuda.Buffer) cuda.Buffer {
	if l.bias == nil {
		return cuda.Buffer{}
	}
	return view(flat, l.b)
}

// batchNorm is a BatchNorm layer's device state: γ and β in the flat
// buffer params, the running statistics in the flat buffers area state
// (left out when state is the zero Buffer: a backward pass reads none).
func (l *layerSpec) batchNorm(b layerBufs, params, state cuda.Buffer) cuda.BatchNorm {
	c := l.Channels
	bn := cuda.BatchNorm{
		C: c, S: l.Plane, Gamma: view(params, l.w), Beta: view(params, l.b),
		Mean: cuda.Sub[float32](b.stats, 0, c), InvStd: cuda.Sub[float32](b.stats, c, c),
		Momentum: l.norm.Momentum, Eps: l.norm.Eps, Sync: b.sync,
	}
	if !state.IsZero() {
		bn.RunMean, bn.RunVar, bn.Tracked = view(state, l.mean), view(state, l.vars), view(state, l.count)
	}
	return bn
}

// forward computes l's output for the n samples of vals[l.src] (and
// vals[l.src2] for an add) into vals[l.dst], with the weights in the flat
// buffer params and the running statistics in state, which a training
// pass (train) of a BatchNorm updates.
func (l *layerSpec) forward(q *cuda.Queue, b layerBufs, params, state cuda.Buffer, vals []cuda.Buffer, n int, train bool) {
	x, y := vals[l.src], vals[l.dst]
	switch l.Kind {
	case linearLayer:
		// The bias and ReLU run after the GEMM (beta = 0) in one pass; the
		// CPU engine adds the bias first, so results differ by rounding.
		q.Gemm(false, true, n, l.Out, l.In, 1, x, view(params, l.w), 0, y)
		q.BiasAct(y, view(params, l.b), n, l.Out, l.ReLU)
	case convLayer:
		// One GEMM for the whole batch: W (Channels×Patch) times the
		// batch's patches (Patch × n·plane), then bias, ReLU and NCHW.
		g, plane := l.Win, l.Win.OutPlane()
		q.Im2Col(b.cols, x, g, n)
		q.Gemm(false, false, l.Channels, n*plane, g.Patch(), 1, view(params, l.w), b.cols, 0, b.work)
		q.CNHWToNCHW(y, b.work, l.biasOf(params), n, l.Channels, plane, l.ReLU)
	case poolLayer:
		q.MaxPool(y, b.arg, x, l.Win, n, l.ReLU)
	case normLayer:
		q.BatchNormForward(l.batchNorm(b, params, state), y, x, n, train, l.ReLU)
	case avgLayer:
		q.GlobalAvgPool(y, x, n*l.Channels, l.Plane)
	case addLayer:
		q.AddAct(y, x, vals[l.src2], n*l.Out, l.ReLU)
	}
}

// backward takes dy, the loss gradient with respect to vals[l.dst] for the
// last (training) forward pass of these n samples, writes the parameter
// gradients into the flat buffer grads (adds them, with accumulate), and
// writes the input gradient into dx unless dx is the zero Buffer (the
// first layer with parameters: its input is data). A Linear's ReLU must
// already be applied to dy (see schedule.go); the other layers apply
// theirs and leave dy as it is. It runs once per forward pass: a
// convolution's input gradient overwrites the patches the forward pass
// left. An add has no backward here: the schedule sums its branches.
func (l *layerSpec) backward(q *cuda.Queue, b layerBufs, params, grads cuda.Buffer, vals []cuda.Buffer, dy, dx cuda.Buffer, n int, accumulate bool) {
	var beta float32
	if accumulate {
		beta = 1
	}
	x := vals[l.src]
	var mask cuda.Buffer // the ReLU's output, whose non-positive entries stop the gradient
	if l.ReLU {
		mask = vals[l.dst]
	}
	switch l.Kind {
	case linearLayer:
		q.Gemm(true, false, l.Out, l.In, n, 1, dy, x, beta, view(grads, l.w))
		q.ColSum(view(grads, l.b), dy, n, l.Out, accumulate)
		if !dx.IsZero() {
			q.Gemm(false, false, n, l.In, l.Out, 1, dy, view(params, l.w), 0, dx)
		}
	case convLayer:
		g, plane := l.Win, l.Win.OutPlane()
		q.NCHWToCNHWGrad(b.work, l.biasOf(grads), dy, mask, n, l.Channels, plane, accumulate)
		q.Gemm(false, true, l.Channels, g.Patch(), n*plane, 1, b.work, b.cols, beta, view(grads, l.w))
		if !dx.IsZero() {
			// The weight gradient was the patches' last reader: their
			// gradient takes their place.
			q.Gemm(true, false, g.Patch(), n*plane, l.Channels, 1, view(params, l.w), b.work, 0, b.cols)
			q.Col2Im(dx, b.cols, g, n)
		}
	case poolLayer:
		q.MaxPoolBackward(dx, dy, b.arg, mask, l.Win, n)
	case normLayer:
		q.BatchNormBackward(l.batchNorm(b, params, cuda.Buffer{}), dx, view(grads, l.w), view(grads, l.b), dy, x, mask, n, accumulate)
	case avgLayer:
		q.GlobalAvgPoolBackward(dx, dy, n*l.Channels, l.Plane)
	}
}
