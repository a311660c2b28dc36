//go:build cuda

package gpu

import "cohort/cuda"

// layerBufs are one layer's device buffers, sized for the model's largest
// batch. A Model owns them; tests make them for a single layer.
type layerBufs struct {
	// out is the layer's output, after its ReLU: the next layer's input
	// and, for a ReLU, the mask of the backward pass.
	out cuda.Buffer
	// cols is a convolution's patch matrix from the forward pass, which
	// the weight gradient reads; the patch gradient overwrites it after.
	cols cuda.Buffer
	// arg is a pool's int32 argmax per output.
	arg cuda.Buffer
	// work is a convolution's channel-major (CNHW) output, then its
	// output gradient. It is only live inside one layer's forward or
	// backward, so every convolution of a model shares one.
	work cuda.Buffer
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
	b := layerBufs{out: alloc(maxBatch * l.Out)}
	switch l.Kind {
	case convLayer:
		b.cols = alloc(l.Win.Patch() * maxBatch * l.Win.OutPlane())
		b.work = work
	case poolLayer:
		b.arg = alloc(maxBatch * l.Out)
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

// forward computes l's output for the n samples in x into b.out, with the
// weights in the flat buffer params.
func (l *layerSpec) forward(q *cuda.Queue, b layerBufs, params, x cuda.Buffer, n int) {
	switch l.Kind {
	case linearLayer:
		// The bias and ReLU run after the GEMM (beta = 0) in one pass; the
		// CPU engine adds the bias first, so results differ by rounding.
		q.Gemm(false, true, n, l.Out, l.In, 1, x, view(params, l.w), 0, b.out)
		q.BiasAct(b.out, view(params, l.b), n, l.Out, l.ReLU)
	case convLayer:
		// One GEMM for the whole batch: W (Channels×Patch) times the
		// batch's patches (Patch × n·plane), then bias, ReLU and NCHW.
		g, plane := l.Win, l.Win.OutPlane()
		q.Im2Col(b.cols, x, g, n)
		q.Gemm(false, false, l.Channels, n*plane, g.Patch(), 1, view(params, l.w), b.cols, 0, b.work)
		q.CNHWToNCHW(b.out, b.work, l.biasOf(params), n, l.Channels, plane, l.ReLU)
	case poolLayer:
		q.MaxPool(b.out, b.arg, x, l.Win, n, l.ReLU)
	}
}

// backward takes dy, the loss gradient with respect to b.out for the last
// forward pass of these n samples x (it may overwrite dy), writes the
// parameter gradients into the flat buffer grads (adds them, with
// accumulate), and writes the input gradient into dx unless dx is the
// zero Buffer (the first layer with parameters: its input is data). It
// runs once per forward pass: a convolution's input gradient overwrites
// the patches the forward pass left.
func (l *layerSpec) backward(q *cuda.Queue, b layerBufs, params, grads, x, dy, dx cuda.Buffer, n int, accumulate bool) {
	var beta float32
	if accumulate {
		beta = 1
	}
	var mask cuda.Buffer // the ReLU's output, whose non-positive entries stop the gradient
	if l.ReLU {
		mask = b.out
	}
	switch l.Kind {
	case linearLayer:
		if l.ReLU {
			q.ReLUBackward(dy, dy, b.out, n*l.Out)
		}
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
	}
}
