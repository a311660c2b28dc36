package cuda

import (
	"errors"
	"testing"
)

func TestNewWindow(t *testing.T) {
	// Output sizes as torch.nn.Conv2d / MaxPool2d give them (floor mode).
	for _, c := range []struct{ h, w, k, s, p, oh, ow int }{
		{28, 28, 5, 1, 0, 24, 24}, {24, 24, 2, 2, 0, 12, 12}, {7, 8, 3, 2, 1, 4, 4},
		{9, 7, 3, 2, 1, 5, 4}, {5, 5, 5, 1, 0, 1, 1}, {4, 4, 5, 1, 1, 2, 2}, {11, 10, 4, 3, 2, 4, 4},
	} {
		g, err := NewWindow(2, c.h, c.w, c.k, c.s, c.p)
		if err != nil || g.OH != c.oh || g.OW != c.ow {
			t.Errorf("%+v: %+v, %v", c, g, err)
			continue
		}
		if err := g.check(); err != nil {
			t.Errorf("%+v: check: %v", g, err)
		}
		if g.InLen() != 2*c.h*c.w || g.OutPlane() != c.oh*c.ow || g.Patch() != 2*c.k*c.k {
			t.Errorf("%+v: sizes %d %d %d", g, g.InLen(), g.OutPlane(), g.Patch())
		}
	}
	for _, bad := range [][6]int{{0, 5, 5, 3, 1, 0}, {1, 5, 5, 0, 1, 0}, {1, 5, 5, 3, 0, 0}, {1, 5, 5, 3, 1, -1}, {1, 2, 5, 4, 1, 0}, {1, 5, 5, 8, 1, 1}} {
		if _, err := NewWindow(bad[0], bad[1], bad[2], bad[3], bad[4], bad[5]); !errors.Is(err, ErrArgument) {
			t.Errorf("NewWindow%v: err = %v, want ErrArgument", bad, err)
		}
	}
	g, _ := NewWindow(1, 8, 8, 2, 2, 0)
	g.OH++ // would make a kernel read past the input
	if err := g.check(); !errors.Is(err, ErrArgument) {
		t.Errorf("check of %+v: %v, want ErrArgument", g, err)
	}
}
