//go:build cuda

package cuda

import "fmt"

// BatchNorm is one BatchNorm layer's device state (the kernels of
// kernels/norm.cu), over batches of N×C×S float32: S values per channel per
// sample, H·W for BatchNorm2d and 1 for BatchNorm1d. It is plain data: the
// buffers belong to the caller.
type BatchNorm struct {
	// C and S are the channels and the values per channel per sample.
	C, S int
	// Gamma and Beta are the weight and the bias (C floats each).
	Gamma, Beta Buffer
	// Mean and InvStd (C floats each) receive the statistics a forward
	// pass normalises with, 1/sqrt(var + Eps) for the variance; the
	// backward pass reads them.
	Mean, InvStd Buffer
	// RunMean and RunVar (C floats each) and Tracked (one float,
	// num_batches_tracked) are the running statistics training updates
	// and evaluation uses.
	RunMean, RunVar, Tracked Buffer
	// Momentum and Eps are PyTorch's (0.1 and 1e-5 by default).
	Momentum, Eps float32
	// Sync, when set, synchronises training statistics across ranks
	// (ClassyVision's batch_norm_sync_mode: pytorch): it must replace the
	// 2C+1 floats of totals, this rank's per-channel sums then the value
	// count (engine/nn's BatchNorm reducer layout), by their sum over all
	// ranks, in stream order (an all-reduce enqueued on q, or a copy to the
	// host, a host all-reduce and a copy back). The forward pass then
	// normalises with the statistics of all ranks' batches, and the
	// backward pass's dx uses the means over all ranks; dγ and dβ stay
	// this rank's, for the gradient all-reduce.
	Sync func(q *Queue, totals Buffer)
}

// syncTotals, when bn.Sync is set, rounds the chunk sums part to the
// totals layout, has bn.Sync sum them over the ranks, and returns them;
// the caller frees them after their last reader. Otherwise it returns the
// zero Buffer.
func (q *Queue) syncTotals(bn BatchNorm, part Buffer, chunks, count int) Buffer {
	if bn.Sync == nil || q.err != nil {
		return Buffer{}
	}
	totals := q.Alloc(4 * int64(2*bn.C+1))
	q.launch("bn_totals", q.k.bnTotals, q.gridFor(bn.C), 1, elementwiseBlock, 1,
		argPtr(part), argInt(chunks), argInt(bn.C), argF64(float64(count)), argPtr(totals))
	if q.err == nil {
		bn.Sync(q, totals)
	}
	return totals
}

// Launch shape of bn_partials: a block of normBlock threads covers
// normBlock·normPerThread consecutive values of one channel.
const normBlock, normPerThread = 256, 8

// checkNorm fails the queue unless bn and n samples fit the batch buffers,
// and returns the values per channel in the batch.
func (q *Queue) checkNorm(op string, bn BatchNorm, n int, batch ...Buffer) (int, bool) {
	if q.err != nil {
		return 0, false
	}
	if bn.C <= 0 || bn.S <= 0 || n < 0 || bn.C > 65535 { // C is the partials grid's y size
		q.fail(fmt.Errorf("%w: %s: %d samples of %d channels × %d", ErrArgument, op, n, bn.C, bn.S))
		return 0, false
	}
	if !q.checkPlanes(op, n, bn.C, bn.S, batch...) {
		return 0, false
	}
	return n * bn.S, true
}

// BatchNormForward normalises the n samples of x into y, then applies a
// ReLU when relu is set. In training (train) it uses the batch's mean and
// biased variance, writes them to bn.Mean and bn.InvStd, moves the
// running statistics towards them by bn.Momentum (the variance unbiased)
// and adds one to bn.Tracked, as engine/nn's BatchNorm does; training
// needs more than one value per channel. In evaluation it uses and copies
// the running statistics and changes nothing else. y and x must not
// overlap.
func (q *Queue) BatchNormForward(bn BatchNorm, y, x Buffer, n int, train, relu bool) {
	count, ok := q.checkNorm("BatchNormForward", bn, n, y, x)
	if !ok || !q.checkMatrix("BatchNormForward statistics", 1, bn.C, bn.Gamma, bn.Beta, bn.Mean, bn.InvStd, bn.RunMean, bn.RunVar) ||
		!q.checkMatrix("BatchNormForward num_batches_tracked", 1, 1, bn.Tracked) {
		return
	}
	if train && count <= 1 {
		q.fail(fmt.Errorf("%w: BatchNormForward: training needs more than 1 value per channel, got %d", ErrArgument, count))
		return
	}
	if n == 0 {
		return
	}
	var part, totals Buffer // evaluation reads no sums
	chunks := 0
	if train {
		part, chunks = q.normPartials(bn, x, Buffer{}, Buffer{}, n)
		defer q.Free(part)
		totals = q.syncTotals(bn, part, chunks, count)
		defer q.Free(totals)
	}
	q.launch("bn_stats", q.k.bnStats, q.gridFor(bn.C), 1, elementwiseBlock, 1,
		argPtr(part), argInt(chunks), argInt(bn.C), argF64(float64(count)), argPtr(bn.Mean), argPtr(bn.InvStd),
		argPtr(bn.RunMean), argPtr(bn.RunVar), argPtr(bn.Tracked), argF64(float64(bn.Momentum)), argF64(float64(bn.Eps)), argBool(train),
		argPtr(totals))
	q.launch("bn_apply", q.k.bnApply, q.gridFor(n*bn.C*bn.S), 1, elementwiseBlock, 1,
		argPtr(x), argPtr(y), argPtr(bn.Mean), argPtr(bn.InvStd), argPtr(bn.Gamma), argPtr(bn.Beta),
		argInt(n), argInt(bn.C), argInt(bn.S), argBool(relu))
}

// normPartials enqueues bn_partials over the n samples of x (with dy, a
// backward pass) and returns its chunk sums, a buffer the caller frees
// once it has enqueued their last reader, and the number of chunks.
func (q *Queue) normPartials(bn BatchNorm, x, dy, y Buffer, n int) (Buffer, int) {
	chunks := (n*bn.S + normBlock*normPerThread - 1) / (normBlock * normPerThread)
	part := q.Alloc(16 * int64(chunks*bn.C)) // two doubles per chunk and channel
	q.launch("bn_partials", q.k.bnPartials, chunks, bn.C, normBlock, 1,
		argPtr(x), argPtr(dy), argPtr(y), argPtr(bn.Mean), argPtr(bn.InvStd), argPtr(part), argInt(n), argInt(bn.C), argInt(bn.S))
	return part, chunks
}

// BatchNormBackward is the backward pass of a training BatchNormForward of
// the n samples x, whose statistics bn.Mean and bn.InvStd still hold: from
// the output gradient dy it sets dgamma and dbeta (adds to them, with
// accumulate) and, unless dx is the zero Buffer, the input gradient dx,
// which includes the paths through the batch statistics. y is the ReLU
// output whose non-positive entries stop the gradient, or the zero Buffer
// without a ReLU. dx must not overlap the other buffers.
func (q *Queue) BatchNormBackward(bn BatchNorm, dx, dgamma, dbeta, dy, x, y Buffer, n int, accumulate bool) {
	batch := []Buffer{dy, x}
	if !y.IsZero() {
		batch = append(batch, y)
	}
	if !dx.IsZero() {
		batch = append(batch, dx)
	}
	count, ok := q.checkNorm("BatchNormBackward", bn, n, batch...)
	if !ok || !q.checkMatrix("BatchNormBackward statistics", 1, bn.C, bn.Gamma, bn.Mean, bn.InvStd, dgamma, dbeta) {
		return
	}
	if count <= 1 {
		q.fail(fmt.Errorf("%w: BatchNormBackward: training statistics need more than 1 value per channel, got %d", ErrArgument, count))
		return
	}
	part, chunks := q.normPartials(bn, x, dy, y, n)
	defer q.Free(part)
	totals := q.syncTotals(bn, part, chunks, count)
	defer q.Free(totals)
	coef := q.Alloc(8 * int64(bn.C)) // mean(g), then mean(g·x̂)
	defer q.Free(coef)
	q.launch("bn_grad", q.k.bnGrad, q.gridFor(bn.C), 1, elementwiseBlock, 1,
		argPtr(part), argInt(chunks), argInt(bn.C), argF64(float64(count)), argPtr(dgamma), argPtr(dbeta), argPtr(coef), argBool(accumulate),
		argPtr(totals))
	if dx.IsZero() {
		return
	}
	q.launch("bn_backward", q.k.bnBackward, q.gridFor(n*bn.C*bn.S), 1, elementwiseBlock, 1,
		argPtr(x), argPtr(dy), argPtr(y), argPtr(bn.Mean), argPtr(bn.InvStd), argPtr(bn.Gamma), argPtr(coef), argPtr(dx),
		argInt(n), argInt(bn.C), argInt(bn.S))
}
