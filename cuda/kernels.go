//go:build cuda

package cuda

import (
	"embed"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"gorgonia.org/cu"
)

// The kernels, compiled by scripts/cuda/gen-kernels.sh from kernels/*.cu:
// a fatbin per source (SASS for sm_80 and sm_90, PTX for newer GPUs) and
// compute_80 PTX as the fallback the driver JIT-compiles.
//
//go:embed kernels/*.fatbin kernels/*.ptx
var kernelFiles embed.FS

// kernelModules are the sources in kernels/, without extension.
var kernelModules = []string{"elementwise", "loss", "sgd", "conv", "norm"}

// kernels are the loaded modules and their functions.
type kernels struct {
	mods []cu.Module
	// JIT lists the modules that loaded from PTX because their fatbin did
	// not fit the GPU.
	jit []string

	biasAct, reluBackward, colSum, addAct, softmaxXent, lossReduce, sgd cu.Function

	im2col, col2im, cnhwToNCHW, nchwToCNHWGrad, maxPool, maxPoolBackward, avgPool, avgPoolBackward cu.Function

	bnPartials, bnStats, bnTotals, bnApply, bnGrad, bnBackward cu.Function
}

func loadKernels() (*kernels, error) {
	k := &kernels{}
	for _, name := range kernelModules {
		m, jit, err := loadModule(name)
		if err != nil {
			return nil, errors.Join(err, k.unload())
		}
		k.mods = append(k.mods, m)
		if jit {
			k.jit = append(k.jit, name)
		}
	}
	fns := []struct {
		mod  int
		name string
		fn   *cu.Function
	}{
		{0, "cohort_bias_act", &k.biasAct},
		{0, "cohort_relu_backward", &k.reluBackward},
		{0, "cohort_col_sum", &k.colSum},
		{0, "cohort_add_act", &k.addAct},
		{1, "cohort_softmax_xent", &k.softmaxXent},
		{1, "cohort_loss_reduce", &k.lossReduce},
		{2, "cohort_sgd", &k.sgd},
		{3, "cohort_im2col", &k.im2col},
		{3, "cohort_col2im", &k.col2im},
		{3, "cohort_cnhw_to_nchw", &k.cnhwToNCHW},
		{3, "cohort_nchw_to_cnhw_grad", &k.nchwToCNHWGrad},
		{3, "cohort_maxpool", &k.maxPool},
		{3, "cohort_maxpool_backward", &k.maxPoolBackward},
		{3, "cohort_global_avgpool", &k.avgPool},
		{3, "cohort_global_avgpool_backward", &k.avgPoolBackward},
		{4, "cohort_bn_partials", &k.bnPartials},
		{4, "cohort_bn_stats", &k.bnStats},
		{4, "cohort_bn_totals", &k.bnTotals},
		{4, "cohort_bn_apply", &k.bnApply},
		{4, "cohort_bn_grad", &k.bnGrad},
		{4, "cohort_bn_backward", &k.bnBackward},
	}
	for _, f := range fns {
		var err error
		if *f.fn, err = k.mods[f.mod].Function(f.name); err != nil {
			return nil, errors.Join(fmt.Errorf("%w: kernel %s in %s: %w", ErrDriver, f.name, kernelModules[f.mod], err), k.unload())
		}
	}
	return k, nil
}

// loadModule loads name's fatbin, or its PTX when the fatbin has no code
// for this GPU; jit says which.
func loadModule(name string) (m cu.Module, jit bool, err error) {
	fat, err := kernelFiles.ReadFile("kernels/" + name + ".fatbin")
	if err != nil {
		return m, false, fmt.Errorf("cuda: embedded kernels: %w", err)
	}
	if m, err = cu.LoadData(string(fat)); err == nil {
		return m, false, nil
	}
	ptx, rerr := kernelFiles.ReadFile("kernels/" + name + ".ptx")
	if rerr != nil {
		return m, false, fmt.Errorf("cuda: embedded kernels: %w", rerr)
	}
	m, perr := cu.LoadData(string(ptx))
	if perr != nil {
		return m, false, fmt.Errorf("%w: load module %s: fatbin: %w; ptx: %w", ErrDriver, name, err, perr)
	}
	return m, true, nil
}

func (k *kernels) unload() error {
	var errs []error
	for _, m := range k.mods {
		errs = append(errs, wrapDriver("unload module", m.Unload()))
	}
	k.mods = nil
	return errors.Join(errs...)
}

// KernelsJIT lists the kernel modules the driver compiled from PTX (none
// when the embedded fatbin has SASS for this GPU).
func (q *Queue) KernelsJIT() []string { return append([]string(nil), q.k.jit...) }

// Kernel arguments: cu's Launch reads 8 bytes behind every parameter
// pointer, so each argument sits in its own uint64 slot, low bytes first
// (x86-64 and arm64 are little-endian).
func argPtr(b Buffer) uint64  { return uint64(b.ptr) }
func argInt(v int) uint64     { return uint64(uint32(int32(v))) }
func argF32(v float32) uint64 { return uint64(math.Float32bits(v)) }
func argF64(v float64) uint64 { return math.Float64bits(v) }
func argBool(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

// launch enqueues fn on the stream; grid and block are x, y sizes.
func (q *Queue) launch(name string, fn cu.Function, gridX, gridY, blockX, blockY int, args ...uint64) {
	if q.err != nil {
		return
	}
	params := make([]unsafe.Pointer, len(args))
	for i := range args {
		params[i] = unsafe.Pointer(&args[i])
	}
	if err := fn.Launch(gridX, gridY, 1, blockX, blockY, 1, 0, q.stream, params); err != nil {
		q.fail(fmt.Errorf("%w: launch %s: %w", ErrDriver, name, err))
	}
}

// elementwiseBlock is the block size of the grid-stride kernels, and
// blocksPerSM how many of them a launch gives each SM at most.
const elementwiseBlock, blocksPerSM = 256, 16

// gridFor is a grid-stride launch's block count for n elements: enough
// blocks to fill every SM several times over, no more than n needs.
func (q *Queue) gridFor(n int) int {
	return max(1, min((n+elementwiseBlock-1)/elementwiseBlock, q.sms*blocksPerSM))
}

// maxElements bounds the elements of one kernel operand. The kernels index
// with int, and a grid-stride loop steps i past the last element by up to
// the grid's thread count, which must not overflow.
func (q *Queue) maxElements() int64 {
	return math.MaxInt32 - int64(q.sms)*blocksPerSM*elementwiseBlock
}

// checkMatrix fails the queue unless rows×cols float32 (or int32) values fit
// every buffer and the index fits the kernels' int arithmetic.
func (q *Queue) checkMatrix(op string, rows, cols int, bufs ...Buffer) bool {
	if q.err != nil {
		return false
	}
	n := int64(rows) * int64(cols)
	if rows < 0 || cols < 0 || n > q.maxElements() {
		q.fail(fmt.Errorf("%w: %s: %d×%d", ErrArgument, op, rows, cols))
		return false
	}
	for i, b := range bufs {
		if b.bytes < 4*n {
			q.fail(fmt.Errorf("%w: %s: buffer %d holds %d bytes, %d×%d floats need %d", ErrArgument, op, i, b.bytes, rows, cols, 4*n))
			return false
		}
	}
	return true
}

// BiasAct adds bias[c] to every row of the rows×cols matrix y, then applies
// ReLU when relu is set: the epilogue of a Linear layer's GEMM.
func (q *Queue) BiasAct(y, bias Buffer, rows, cols int, relu bool) {
	if !q.checkMatrix("BiasAct", rows, cols, y) || !q.checkMatrix("BiasAct bias", 1, cols, bias) || rows*cols == 0 {
		return
	}
	q.launch("bias_act", q.k.biasAct, q.gridFor(rows*cols), 1, elementwiseBlock, 1,
		argPtr(y), argPtr(bias), argInt(rows), argInt(cols), argBool(relu))
}

// ReLUBackward sets dx = dy where y > 0 and 0 elsewhere, over n floats; y
// is the ReLU's output. dx may be dy.
func (q *Queue) ReLUBackward(dx, dy, y Buffer, n int) {
	if !q.checkMatrix("ReLUBackward", 1, n, dx, dy, y) || n == 0 {
		return
	}
	q.launch("relu_backward", q.k.reluBackward, q.gridFor(n), 1, elementwiseBlock, 1,
		argPtr(dx), argPtr(dy), argPtr(y), argInt(n))
}

// AddAct sets y = a + b over n floats, then ReLU when relu is set: the
// end of a residual block, and the sum of its branches' input gradients.
// y may be a or b.
func (q *Queue) AddAct(y, a, b Buffer, n int, relu bool) {
	if !q.checkMatrix("AddAct", 1, n, y, a, b) || n == 0 {
		return
	}
	q.launch("add_act", q.k.addAct, q.gridFor(n), 1, elementwiseBlock, 1,
		argPtr(y), argPtr(a), argPtr(b), argInt(n), argBool(relu))
}

// ColSum sets (or with accumulate, adds to) db[c] the sum over rows of the
// rows×cols matrix dy: a Linear layer's bias gradient.
func (q *Queue) ColSum(db, dy Buffer, rows, cols int, accumulate bool) {
	if !q.checkMatrix("ColSum", rows, cols, dy) || !q.checkMatrix("ColSum out", 1, cols, db) || cols == 0 {
		return
	}
	q.launch("col_sum", q.k.colSum, (cols+31)/32, 1, 32, 32,
		argPtr(db), argPtr(dy), argInt(rows), argInt(cols), argBool(accumulate))
}

// SoftmaxXent computes, for rows×cols logits and int32 labels, each row's
// cross-entropy loss[r] and correct[r] (1 when no logit is above the
// label's), and, unless dlogits is the zero Buffer, the gradient
// (softmax - onehot)·scale into dlogits (it may not be logits). Labels must
// be in [0, cols): the kernel does not check them.
func (q *Queue) SoftmaxXent(logits, labels, dlogits, loss, correct Buffer, rows, cols int, scale float32) {
	bufs := []Buffer{logits}
	if !dlogits.IsZero() {
		bufs = append(bufs, dlogits)
	}
	if !q.checkMatrix("SoftmaxXent", rows, cols, bufs...) || !q.checkMatrix("SoftmaxXent per-row", rows, 1, labels, loss, correct) || rows == 0 {
		return
	}
	if cols == 0 {
		q.fail(fmt.Errorf("%w: SoftmaxXent over 0 classes", ErrArgument))
		return
	}
	const rowsPerBlock = 8 // one warp per row
	if rows > math.MaxInt32/32-rowsPerBlock {
		// The kernel's thread index, 32 per row, is an int.
		q.fail(fmt.Errorf("%w: SoftmaxXent over %d rows", ErrArgument, rows))
		return
	}
	q.launch("softmax_xent", q.k.softmaxXent, (rows+rowsPerBlock-1)/rowsPerBlock, 1, 32*rowsPerBlock, 1,
		argPtr(logits), argPtr(labels), argPtr(dlogits), argPtr(loss), argPtr(correct), argInt(rows), argInt(cols), argF32(scale))
}

// StatsLen is the number of float64 values LossReduce writes: the batch's
// mean loss, then running sums of the loss and of correct rows.
const StatsLen = 3

// LossReduce sums SoftmaxXent's per-row loss and correct over rows into
// stats (StatsLen float64s): stats[0] = mean loss of the batch, stats[1] +=
// loss sum, stats[2] += correct count. Zero stats first to start a sum.
func (q *Queue) LossReduce(loss, correct, stats Buffer, rows int) {
	if !q.checkMatrix("LossReduce", rows, 1, loss, correct) || rows == 0 {
		return
	}
	if stats.bytes < StatsLen*8 {
		q.fail(fmt.Errorf("%w: LossReduce: stats buffer of %d bytes", ErrArgument, stats.bytes))
		return
	}
	q.launch("loss_reduce", q.k.lossReduce, 1, 1, 1024, 1,
		argPtr(loss), argPtr(correct), argInt(rows), argPtr(stats))
}

// SGD is one torch.optim.SGD update (dampening 0) of the n floats of w
// from gradient g: d = g + wd·w, buf = momentum·buf + d (skipped when buf is
// the zero Buffer: no momentum), d = buf or, for Nesterov, d + momentum·buf,
// then w -= lr·d. A zeroed buf gives PyTorch's first step.
func (q *Queue) SGD(w, g, buf Buffer, n int, lr, momentum, wd float32, nesterov bool) {
	bufs := []Buffer{w, g}
	if !buf.IsZero() {
		bufs = append(bufs, buf)
	}
	if !q.checkMatrix("SGD", 1, n, bufs...) || n == 0 {
		return
	}
	q.launch("sgd", q.k.sgd, q.gridFor(n), 1, elementwiseBlock, 1,
		argPtr(w), argPtr(g), argPtr(buf), argInt(n), argF32(lr), argF32(momentum), argF32(wd), argBool(nesterov))
}
