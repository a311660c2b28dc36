package nn

import "fmt"

// window is the geometry of a square sliding window (kernel k, stride s,
// zero padding p) over one C×H×W image; convolution and pooling share it.
type window struct {
	c, h, w int // input channels and size
	k, s, p int // kernel, stride, padding
	oh, ow  int // output size
}

// newWindow computes the output size the way PyTorch does (floor mode) and
// panics, naming the layer, when the window does not fit the input.
func newWindow(layer string, c, h, w, k, s, p int) window {
	g := window{c: c, h: h, w: w, k: k, s: s, p: p}
	g.oh = (h+2*p-k)/s + 1
	g.ow = (w+2*p-k)/s + 1
	if h+2*p < k || w+2*p < k {
		panic(fmt.Sprintf("nn: %s: %d×%d window does not fit a %d×%d input padded by %d", layer, k, k, h, w, p))
	}
	return g
}

// windowOf reads C×H×W from an input shape (batch dimension excluded) of
// rank 3.
func windowOf(layer string, in []int, k, s, p int) window {
	if len(in) != 3 {
		panic(fmt.Sprintf("nn: %s: input shape %v, want C×H×W", layer, in))
	}
	return newWindow(layer, in[0], in[1], in[2], k, s, p)
}

// patch is the number of values one output position reads: C·k·k.
func (g window) patch() int { return g.c * g.k * g.k }

// outPlane is the number of output positions per channel: OH·OW.
func (g window) outPlane() int { return g.oh * g.ow }

// inPlane is H·W.
func (g window) inPlane() int { return g.h * g.w }

// span gives, for kernel column kj, the output columns [lo, hi) whose input
// column ow·s - p + kj lies inside the image, and that column for ow = 0.
// Outside [lo, hi) the window reads padding.
func (g window) span(kj int) (lo, hi, w0 int) {
	w0 = kj - g.p
	if w0 < 0 {
		lo = (-w0 + g.s - 1) / g.s
	}
	hi = g.ow
	if rest := g.w - w0; rest <= 0 {
		hi = 0
	} else {
		hi = min(hi, (rest+g.s-1)/g.s)
	}
	return min(lo, hi), hi, w0
}

// im2col writes image x (C×H×W) into dst as a patch()×outPlane() matrix
// whose row (c, ki, kj) holds input (c, oh·s-p+ki, ow·s-p+kj) for every
// output position (oh, ow), zero where that falls in the padding.
func im2col(g window, x, dst []float32) {
	plane, inPlane := g.outPlane(), g.inPlane()
	for c := range g.c {
		img := x[c*inPlane:][:inPlane]
		for ki := range g.k {
			for kj := range g.k {
				row := dst[((c*g.k+ki)*g.k+kj)*plane:][:plane]
				if g.p == 0 && g.s == 1 {
					// Every window lies inside the image: no padding to
					// write and no bounds to check (a third faster).
					for oh := range g.oh {
						copy(row[oh*g.ow:][:g.ow], img[(oh+ki)*g.w+kj:][:g.ow])
					}
					continue
				}
				lo, hi, w0 := g.span(kj)
				for oh := range g.oh {
					seg := row[oh*g.ow:][:g.ow]
					h := oh*g.s - g.p + ki
					if h < 0 || h >= g.h {
						clear(seg)
						continue
					}
					src := img[h*g.w:][:g.w]
					// lo and hi are at most p away from the ends, so
					// loops beat calls into memclr.
					for ow := range lo {
						seg[ow] = 0
					}
					for ow := hi; ow < len(seg); ow++ {
						seg[ow] = 0
					}
					if g.s == 1 {
						copy(seg[lo:hi], src[w0+lo:w0+hi])
						continue
					}
					for ow := lo; ow < hi; ow++ {
						seg[ow] = src[ow*g.s+w0]
					}
				}
			}
		}
	}
}

// col2im is im2col's adjoint: it adds each entry of the patch matrix col
// into the input position it was read from. dx (C×H×W) must be zeroed by
// the caller; padding entries are dropped.
func col2im(g window, col, dx []float32) {
	plane, inPlane := g.outPlane(), g.inPlane()
	for c := range g.c {
		img := dx[c*inPlane:][:inPlane]
		for ki := range g.k {
			for kj := range g.k {
				row := col[((c*g.k+ki)*g.k+kj)*plane:][:plane]
				lo, hi, w0 := g.span(kj)
				for oh := range g.oh {
					h := oh*g.s - g.p + ki
					if h < 0 || h >= g.h {
						continue
					}
					seg := row[oh*g.ow:][:g.ow]
					dst := img[h*g.w:][:g.w]
					if g.s == 1 {
						d, s := dst[w0+lo:w0+hi], seg[lo:hi]
						for j := range d {
							d[j] += s[j]
						}
						continue
					}
					for ow := lo; ow < hi; ow++ {
						dst[ow*g.s+w0] += seg[ow]
					}
				}
			}
		}
	}
}
