package cuda

import "fmt"

// Window is the geometry of a square K×K window sliding with stride S over
// C×H×W images (one sample of an N×C×H×W batch) with P positions of
// padding on every side: zeros for a convolution, positions that never win
// for a max pool. OH×OW is the output size, in PyTorch's floor mode.
// NewWindow fills it in; the kernels that take one re-check it, so that a
// hand-made Window cannot make them read outside their buffers.
type Window struct {
	C, H, W int // input channels and size
	K, S, P int // kernel side, stride, padding
	OH, OW  int // output size
}

// NewWindow is the window of side k, stride s and padding p over C×H×W
// images. It fails with ErrArgument unless every size is positive (p may
// be 0) and the window fits the padded image.
func NewWindow(c, h, w, k, s, p int) (Window, error) {
	g := Window{C: c, H: h, W: w, K: k, S: s, P: p}
	if c <= 0 || h <= 0 || w <= 0 || k <= 0 || s <= 0 || p < 0 || h+2*p < k || w+2*p < k {
		return g, fmt.Errorf("%w: %d×%d window, stride %d, padding %d over %d×%d×%d images", ErrArgument, k, k, s, p, c, h, w)
	}
	g.OH = (h+2*p-k)/s + 1
	g.OW = (w+2*p-k)/s + 1
	return g, nil
}

// check reports whether g is what NewWindow makes of its inputs.
func (g Window) check() error {
	want, err := NewWindow(g.C, g.H, g.W, g.K, g.S, g.P)
	if err != nil {
		return err
	}
	if want != g {
		return fmt.Errorf("%w: window %+v has output %d×%d, want %d×%d", ErrArgument, g, g.OH, g.OW, want.OH, want.OW)
	}
	return nil
}

// InLen is the number of values of one input image: C·H·W.
func (g Window) InLen() int { return g.C * g.H * g.W }

// OutPlane is the number of output positions per channel: OH·OW.
func (g Window) OutPlane() int { return g.OH * g.OW }

// Patch is the number of input values one output position of a
// convolution reads: C·K·K, a row count of the patch matrix.
func (g Window) Patch() int { return g.C * g.K * g.K }
