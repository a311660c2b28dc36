//go:build cuda

package cuda

import "fmt"

// Convolution, max-pool and global average pool operations on N×C×H×W
// float32 batches (the kernels of kernels/conv.cu). A convolution layer is
//
//	forward   Im2Col(cols, x); Gemm(W·cols → cnhw); CNHWToNCHW(y, cnhw, bias)
//	backward  NCHWToCNHWGrad(dcnhw, db, dy); Gemm(dcnhw·colsᵀ → dW);
//	          Gemm(Wᵀ·dcnhw → dcols); Col2Im(dx, dcols)
//
// with W read as Out×Patch and every matrix row-major, so each product is
// one GEMM over the whole batch.

// Launch shape of nchw_to_cnhw_grad: a block of gradBlock threads covers
// gradBlock·gradPerThread consecutive entries of one channel's row.
const gradBlock, gradPerThread = 256, 8

// windowArgs are the kernels' geometry arguments n, c, h, w, k, s, p, oh, ow.
func windowArgs(g Window, n int) []uint64 {
	return []uint64{argInt(n), argInt(g.C), argInt(g.H), argInt(g.W), argInt(g.K), argInt(g.S), argInt(g.P), argInt(g.OH), argInt(g.OW)}
}

// checkWindow fails the queue unless g is consistent and n is not negative.
func (q *Queue) checkWindow(op string, g Window, n int) bool {
	if q.err != nil {
		return false
	}
	if err := g.check(); err != nil {
		q.fail(fmt.Errorf("%s: %w", op, err))
		return false
	}
	if n < 0 {
		q.fail(fmt.Errorf("%w: %s of %d images", ErrArgument, op, n))
		return false
	}
	return true
}

// Im2Col writes the patch matrix of n images x (n×C×H×W) into cols:
// g.Patch() rows of n·g.OutPlane() columns, where row (c·K + ki)·K + kj,
// column (b·OH + oy)·OW + ox holds input (b, c, oy·S - P + ki, ox·S - P + kj),
// or 0 where that lies in the padding.
func (q *Queue) Im2Col(cols, x Buffer, g Window, n int) {
	if !q.checkWindow("Im2Col", g, n) || !q.checkMatrix("Im2Col x", n, g.InLen(), x) ||
		!q.checkMatrix("Im2Col cols", g.Patch(), n*g.OutPlane(), cols) || n == 0 {
		return
	}
	q.launch("im2col", q.k.im2col, q.gridFor(g.Patch()*n*g.OutPlane()), 1, elementwiseBlock, 1,
		append([]uint64{argPtr(x), argPtr(cols)}, windowArgs(g, n)...)...)
}

// Col2Im is Im2Col's adjoint: it sets every element of dx (n×C×H×W) to
// the sum of the entries of the patch-matrix gradient cols that Im2Col
// would have read from it. cols and dx must not overlap.
func (q *Queue) Col2Im(dx, cols Buffer, g Window, n int) {
	if !q.checkWindow("Col2Im", g, n) || !q.checkMatrix("Col2Im dx", n, g.InLen(), dx) ||
		!q.checkMatrix("Col2Im cols", g.Patch(), n*g.OutPlane(), cols) || n == 0 {
		return
	}
	q.launch("col2im", q.k.col2im, q.gridFor(n*g.InLen()), 1, elementwiseBlock, 1,
		append([]uint64{argPtr(cols), argPtr(dx)}, windowArgs(g, n)...)...)
}

// CNHWToNCHW sets y (n×ch×plane) to the channel-major cnhw (ch rows of
// n·plane) plus bias[channel] (unless bias is the zero Buffer), then ReLU
// when relu is set: the epilogue of a convolution's GEMM. y and cnhw must
// not overlap.
func (q *Queue) CNHWToNCHW(y, cnhw, bias Buffer, n, ch, plane int, relu bool) {
	if !q.checkPlanes("CNHWToNCHW", n, ch, plane, y, cnhw) || (!bias.IsZero() && !q.checkMatrix("CNHWToNCHW bias", 1, ch, bias)) || ch*n*plane == 0 {
		return
	}
	q.launch("cnhw_to_nchw", q.k.cnhwToNCHW, q.gridFor(ch*n*plane), 1, elementwiseBlock, 1,
		argPtr(cnhw), argPtr(bias), argPtr(y), argInt(n), argInt(ch), argInt(plane), argBool(relu))
}

// NCHWToCNHWGrad moves a convolution's output gradient dy (n×ch×plane)
// into the channel-major cnhw (ch rows of n·plane), zero where the ReLU
// output y is not positive unless y is the zero Buffer (no ReLU). Unless
// db is the zero Buffer it also sets db[c] (adds to it, with accumulate)
// the sum of channel c's gradient: the bias gradient. The sums run in a
// fixed order, so results are deterministic. cnhw must not overlap dy or y.
func (q *Queue) NCHWToCNHWGrad(cnhw, db, dy, y Buffer, n, ch, plane int, accumulate bool) {
	bufs := []Buffer{cnhw, dy}
	if !y.IsZero() {
		bufs = append(bufs, y)
	}
	if !q.checkPlanes("NCHWToCNHWGrad", n, ch, plane, bufs...) || (!db.IsZero() && !q.checkMatrix("NCHWToCNHWGrad db", 1, ch, db)) {
		return
	}
	if ch > 65535 { // the grid's y size
		q.fail(fmt.Errorf("%w: NCHWToCNHWGrad over %d channels", ErrArgument, ch))
		return
	}
	if ch*n*plane == 0 {
		if !db.IsZero() && ch > 0 && !accumulate {
			q.Fill(Sub[float32](db, 0, ch), 0) // a sum of nothing
		}
		return
	}
	chunks := (n*plane + gradBlock*gradPerThread - 1) / (gradBlock * gradPerThread)
	var part Buffer
	if !db.IsZero() {
		// Freed once enqueued: stream order keeps its next user after this
		// ColSum, and the pool hands it back without a cuMemAlloc.
		part = q.Alloc(4 * int64(chunks*ch))
		defer q.Free(part)
	}
	q.launch("nchw_to_cnhw_grad", q.k.nchwToCNHWGrad, chunks, ch, gradBlock, 1,
		argPtr(dy), argPtr(y), argPtr(cnhw), argPtr(part), argInt(n), argInt(ch), argInt(plane))
	if !db.IsZero() {
		q.ColSum(db, part, chunks, ch, accumulate)
	}
}

// checkPlanes fails the queue unless the sizes are not negative and n
// images of ch channels × plane values fit every buffer.
func (q *Queue) checkPlanes(op string, n, ch, plane int, bufs ...Buffer) bool {
	if q.err == nil && (n < 0 || ch < 0 || plane < 0) {
		q.fail(fmt.Errorf("%w: %s: %d images of %d channels × %d", ErrArgument, op, n, ch, plane))
	}
	return q.checkMatrix(op, ch, n*plane, bufs...)
}

// checkPool checks a max pool's geometry: PyTorch's padding limit (at most
// half the window) keeps every window non-empty.
func (q *Queue) checkPool(op string, g Window, n int) bool {
	if !q.checkWindow(op, g, n) {
		return false
	}
	if 2*g.P > g.K {
		q.fail(fmt.Errorf("%w: %s: padding %d is more than half the %d×%d window", ErrArgument, op, g.P, g.K, g.K))
		return false
	}
	return true
}

// MaxPool sets y (n×C×OH×OW) to the maximum of each window of x
// (n×C×H×W), then ReLU when relu is set, and arg (int32, same shape as y)
// to the offset of that maximum within its H×W input plane. As
// engine/nn's MaxPool2d: padding never wins, ties keep the first position
// in row-major order, and a NaN wins (the last NaN of the window).
func (q *Queue) MaxPool(y, arg, x Buffer, g Window, n int, relu bool) {
	if !q.checkPool("MaxPool", g, n) || !q.checkMatrix("MaxPool x", n, g.InLen(), x) ||
		!q.checkMatrix("MaxPool y", n, g.C*g.OutPlane(), y, arg) || n == 0 {
		return
	}
	q.launch("maxpool", q.k.maxPool, q.gridFor(n*g.C*g.OutPlane()), 1, elementwiseBlock, 1,
		argPtr(x), argPtr(y), argPtr(arg), argInt(n*g.C), argInt(g.H), argInt(g.W), argInt(g.K), argInt(g.S), argInt(g.P),
		argInt(g.OH), argInt(g.OW), argBool(relu))
}

// MaxPoolBackward sets every element of dx (n×C×H×W) to the sum of the
// output gradients dy whose maximum (arg, from MaxPool) it was, leaving
// out outputs the ReLU zeroed (y ≤ 0) unless y is the zero Buffer.
// Overlapping windows are summed in output order, without atomics.
func (q *Queue) MaxPoolBackward(dx, dy, arg, y Buffer, g Window, n int) {
	bufs := []Buffer{dy, arg}
	if !y.IsZero() {
		bufs = append(bufs, y)
	}
	if !q.checkPool("MaxPoolBackward", g, n) || !q.checkMatrix("MaxPoolBackward dx", n, g.InLen(), dx) ||
		!q.checkMatrix("MaxPoolBackward dy", n, g.C*g.OutPlane(), bufs...) || n == 0 {
		return
	}
	q.launch("maxpool_backward", q.k.maxPoolBackward, q.gridFor(n*g.InLen()), 1, elementwiseBlock, 1,
		argPtr(dy), argPtr(arg), argPtr(y), argPtr(dx), argInt(n*g.C), argInt(g.H), argInt(g.W), argInt(g.K), argInt(g.S), argInt(g.P),
		argInt(g.OH), argInt(g.OW))
}

// GlobalAvgPool sets y[i] (planes values) to the mean of plane i of x
// (planes × plane values), summed in order in float and scaled by
// 1/plane, as engine/nn's GlobalAvgPool: N×C×H×W to N×C is planes = N·C,
// plane = H·W.
func (q *Queue) GlobalAvgPool(y, x Buffer, planes, plane int) {
	if !q.checkPlanes("GlobalAvgPool", planes, 1, plane, x) || !q.checkMatrix("GlobalAvgPool y", planes, 1, y) || planes == 0 {
		return
	}
	if plane == 0 {
		q.fail(fmt.Errorf("%w: GlobalAvgPool of empty planes", ErrArgument))
		return
	}
	q.launch("global_avgpool", q.k.avgPool, q.gridFor(planes), 1, elementwiseBlock, 1,
		argPtr(x), argPtr(y), argInt(planes), argInt(plane))
}

// GlobalAvgPoolBackward sets every value of plane p of dx to dy[p]/plane.
func (q *Queue) GlobalAvgPoolBackward(dx, dy Buffer, planes, plane int) {
	if !q.checkPlanes("GlobalAvgPoolBackward", planes, 1, plane, dx) || !q.checkMatrix("GlobalAvgPoolBackward dy", planes, 1, dy) || planes*plane == 0 {
		return
	}
	q.launch("global_avgpool_backward", q.k.avgPoolBackward, q.gridFor(planes*plane), 1, elementwiseBlock, 1,
		argPtr(dy), argPtr(dx), argInt(planes), argInt(plane))
}
