package nn_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"cohort/engine/cpu"
	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// tolBlock bounds a residual block's errors: two convolutions over up to
// 3·3·4 = 36 terms, each followed by a batch norm whose gradient divides
// by a small batch variance (seen 4e-7).
const tolBlock = 4e-6

// tolBottleneck is tolBlock for bottlenecks: three convolution+BN stages,
// the middle one only two channels wide (seen 1.4e-5).
const tolBottleneck = 3e-5

// layersOracle rebuilds the layers of s in gorgonia (training mode: batch
// statistics) and returns the output and one node per param, in
// s.Params() order.
func layersOracle(t *testing.T, o *oracle, x *G.Node, s *nn.Sequential) (*G.Node, []*G.Node) {
	t.Helper()
	var params []*G.Node
	for _, l := range s.Layers {
		switch l := l.(type) {
		case *nn.Conv2d:
			y, w, b := convOracle(o, x, l)
			x, params = y, append(params, w)
			if b != nil {
				params = append(params, b)
			}
		case *nn.BatchNorm:
			gamma := o.input(l.Weight.Name, l.Weight.Value.Data, l.Features)
			beta := o.input(l.Bias.Name, l.Bias.Value.Data, l.Features)
			x, params = bnOracle(o, x, gamma, beta, nil, nil, float64(l.Eps)), append(params, gamma, beta)
		case *nn.ReLU:
			x = G.Must(G.Rectify(x))
		default:
			t.Fatalf("no oracle for %T", l)
		}
	}
	return x, params
}

// blockOracle is layersOracle for a residual block.
func blockOracle(t *testing.T, o *oracle, x *G.Node, r *nn.Residual) (*G.Node, []*G.Node) {
	t.Helper()
	main, params := layersOracle(t, o, x, r.Main)
	short := x
	if r.Shortcut != nil {
		var sp []*G.Node
		short, sp = layersOracle(t, o, x, r.Shortcut)
		params = append(params, sp...)
	}
	return G.Must(G.Rectify(G.Must(G.Add(main, short)))), params
}

func TestBlocksMatchGorgonia(t *testing.T) {
	for _, tc := range []struct {
		in, out, stride int
		h, w            int
		mid             int // > 0: a bottleneck through mid channels
	}{
		{3, 3, 1, 6, 5, 0}, // identity shortcut
		{2, 4, 2, 7, 6, 0}, // conv1×1-BN shortcut, odd size
		{3, 5, 1, 5, 5, 0}, // projection for the channel change only
		{4, 4, 1, 5, 4, 2}, // bottleneck, identity shortcut
		{3, 8, 2, 7, 6, 2}, // bottleneck, strided projection
	} {
		t.Run(fmt.Sprintf("%d→%d s%d mid%d", tc.in, tc.out, tc.stride, tc.mid), func(t *testing.T) {
			const n = 3
			rng := rand.New(rand.NewPCG(91, uint64(tc.out+100*tc.mid)))
			block := nn.NewBasicBlock(cpu.BLAS(), rng, "layer1.0", tc.in, tc.out, tc.stride)
			tol := tolBlock
			if tc.mid > 0 {
				block = nn.NewBottleneck(cpu.BLAS(), rng, "layer1.0", tc.in, tc.mid, tc.out, tc.stride)
				tol = tolBottleneck
			}
			for _, p := range block.Params() {
				if strings.Contains(p.Name, "bn") || strings.HasPrefix(p.Name, "layer1.0.downsample.1") {
					copy(p.Value.Data, randn(rng, p.Value.Len())) // γ and β off 1 and 0
				}
			}
			x := tensor.FromData(randn(rng, n*tc.in*tc.h*tc.w), n, tc.in, tc.h, tc.w)
			out, _ := block.Cost(x.Shape[1:])
			r := randn(rng, n*numelOf(out))

			o := newOracle(t)
			gx := o.input("x", x.Data, x.Shape...)
			gy, gparams := blockOracle(t, o, gx, block)
			o.run(o.weightedSum(gy, r), append(gparams, gx)...)

			y := block.Forward(x, nn.Pass{Train: true})
			checkClose(t, "y", y.Data, forwardValue(t, x, func(o *oracle, x *G.Node) *G.Node {
				y, _ := blockOracle(t, o, x, block)
				return y
			}), tol)
			checkClose(t, "dx", block.Backward(tensor.FromData(r, y.Shape...)).Data, grad(t, gx), tol)
			for i, p := range block.Params() {
				checkClose(t, p.Name, p.Grad.Data, grad(t, gparams[i]), tol)
			}
		})
	}
}

// Names must be torchvision's, so a checkpoint loads into its ResNet.
func TestBasicBlockNames(t *testing.T) {
	block := nn.NewBasicBlock(cpu.BLAS(), rand.New(rand.NewPCG(1, 1)), "layer2.0", 4, 8, 2)
	var params, buffers []string
	for _, p := range block.Params() {
		params = append(params, p.Name)
	}
	for _, b := range nn.Buffers(block) {
		buffers = append(buffers, b.Name)
	}
	wantParams := []string{
		"layer2.0.conv1.weight", "layer2.0.bn1.weight", "layer2.0.bn1.bias",
		"layer2.0.conv2.weight", "layer2.0.bn2.weight", "layer2.0.bn2.bias",
		"layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight", "layer2.0.downsample.1.bias",
	}
	var wantBuffers []string
	for _, bn := range []string{"bn1", "bn2", "downsample.1"} {
		for _, b := range []string{"running_mean", "running_var", "num_batches_tracked"} {
			wantBuffers = append(wantBuffers, "layer2.0."+bn+"."+b)
		}
	}
	if !slices.Equal(params, wantParams) {
		t.Errorf("params %v\nwant %v", params, wantParams)
	}
	if !slices.Equal(buffers, wantBuffers) {
		t.Errorf("buffers %v\nwant %v", buffers, wantBuffers)
	}
	if identity := nn.NewBasicBlock(cpu.BLAS(), rand.New(rand.NewPCG(1, 1)), "b", 4, 4, 1); identity.Shortcut != nil {
		t.Error("same shape: the shortcut should be the identity")
	}
}

func TestResidualRejectsBranchSkippingInputGrad(t *testing.T) {
	main := nn.NewSequential(nn.NewReLU())
	main.SkipInputGrad = true
	defer func() {
		if recover() == nil {
			t.Error("NewResidual accepted a branch that skips its input gradient")
		}
	}()
	nn.NewResidual(main, nil, false)
}

// Without the final ReLU the block is a plain sum, and with an identity
// shortcut dx is dy plus the main branch's dx.
func TestResidualWithoutReLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(93, 0))
	lin := nn.NewLinear(cpu.BLAS(), rng, "0", 4, 4)
	r := nn.NewResidual(nn.NewSequential(lin), nil, false)
	x := tensor.FromData(randn(rng, 8), 2, 4)
	y := r.Forward(x, nn.Pass{}).Clone()
	main := lin.Forward(x, nn.Pass{})
	for i := range y.Data {
		if y.Data[i] != main.Data[i]+x.Data[i] {
			t.Fatalf("y[%d] = %v, want %v + %v", i, y.Data[i], main.Data[i], x.Data[i])
		}
	}
	dy := tensor.FromData(randn(rng, 8), 2, 4)
	dx := r.Backward(dy).Clone()
	dmain := lin.Backward(dy)
	for i := range dx.Data {
		if dx.Data[i] != dmain.Data[i]+dy.Data[i] {
			t.Fatalf("dx[%d] = %v, want %v + %v", i, dx.Data[i], dmain.Data[i], dy.Data[i])
		}
	}
}

// Walk must reach every batch norm of a ResNet, inside blocks and their
// shortcuts, in forward (state_dict) order.
func TestWalkFindsNestedBatchNorms(t *testing.T) {
	var names []string
	nn.Walk(newSmallResNet(1, 4), func(l nn.Layer) {
		if bn, ok := l.(*nn.BatchNorm); ok {
			names = append(names, bn.Weight.Name)
		}
	})
	want := []string{"bn1.weight", "layer1.0.bn1.weight", "layer1.0.bn2.weight", "layer2.0.bn1.weight", "layer2.0.bn2.weight", "layer2.0.downsample.1.weight"}
	if !slices.Equal(names, want) {
		t.Errorf("Walk found %v, want %v", names, want)
	}
}
