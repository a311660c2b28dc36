package task

import (
	"fmt"
	"math"
	"math/rand/v2"

	"cohort/engine/config"
	"cohort/engine/nn"
)

// buildModel makes the configured network for samples of shape in over
// classes classes, initialised from o.Seed (the same on every rank).
func buildModel(c config.Model, in []int, classes int, o Options) (*nn.Sequential, error) {
	rng := rand.New(rand.NewPCG(o.Seed, 0x1417))
	var m *nn.Sequential
	var err error
	switch c.Name {
	case "mlp":
		m, err = buildMLP(c, in, classes, o, rng)
	case "lenet":
		m, err = buildLeNet(c, in, classes, o, rng)
	case "resnet":
		m, err = buildResNet(c, in, classes, o, rng)
	default:
		return nil, fmt.Errorf("%w: model %q (Cohort has mlp, lenet, resnet)", ErrUnsupported, c.Name)
	}
	if err != nil {
		return nil, err
	}
	// Nothing upstream of the model needs a gradient.
	m.SkipInputGrad = true
	return m, nil
}

// outputs is the model's head size: model.output_dim, or the dataset's
// class count when it is left out; never fewer outputs than classes.
func outputs(c config.Model, classes int) (int, error) {
	out := c.OutputDim
	if out == 0 {
		out = classes
	}
	if out < classes {
		return 0, fmt.Errorf("%w: model.output_dim %d is below the dataset's %d classes", config.ErrInvalid, out, classes)
	}
	return out, nil
}

func numel(shape []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return n
}

// buildMLP is ClassyVision's MLP: [dropout], [BatchNorm1d], then per hidden
// layer Linear, [BatchNorm1d], [Dropout], ReLU, and a final Linear, after a
// Flatten. Parameter names are the layer indices, as in an nn.Sequential.
func buildMLP(c config.Model, in []int, classes int, o Options, rng *rand.Rand) (*nn.Sequential, error) {
	width := numel(in)
	if c.InputDim != 0 && c.InputDim != width {
		return nil, fmt.Errorf("%w: model.input_dim %d does not match the dataset's %v = %d values per sample", config.ErrInvalid, c.InputDim, in, width)
	}
	out, err := outputs(c, classes)
	if err != nil {
		return nil, err
	}
	var layers []nn.Layer
	name := func() string { return fmt.Sprint(len(layers)) }
	add := func(l nn.Layer) { layers = append(layers, l) }
	dropout := func() error {
		if c.Dropout <= 0 {
			return nil
		}
		d, err := nn.NewDropout(float32(c.Dropout))
		if err != nil {
			return err
		}
		add(d)
		return nil
	}
	add(nn.NewFlatten())
	if c.FirstDropout {
		if err := dropout(); err != nil {
			return nil, err
		}
	}
	if c.UseBatchnorm && c.FirstBatchnorm {
		add(nn.NewBatchNorm(name(), width))
	}
	for _, h := range c.HiddenDims {
		add(nn.NewLinear(o.BLAS, rng, name(), width, h))
		if c.UseBatchnorm {
			add(nn.NewBatchNorm(name(), h))
		}
		if err := dropout(); err != nil {
			return nil, err
		}
		add(nn.NewReLU())
		width = h
	}
	add(nn.NewLinear(o.BLAS, rng, name(), width, out))
	return nn.NewSequential(layers...), nil
}

// buildLeNet is conv5×5×20-relu-pool2-conv5×5×50-relu-pool2-fc500-relu-fc10
// (the layout of LeCun et al.'s LeNet and of the PyTorch anchor), with
// PyTorch's nn.Sequential parameter names. Each ReLU runs after its pool
// instead of before: max and ReLU commute, in value and in gradient (a
// window whose max is ≤ 0 passes no gradient either way), and the ReLU
// then touches a quarter of the values (6 % of a training step).
// TestLeNetPoolBeforeReLU checks the two orders agree bit for bit.
func buildLeNet(c config.Model, in []int, classes int, o Options, rng *rand.Rand) (*nn.Sequential, error) {
	if len(in) != 3 || in[0] != 1 || in[1] != 28 || in[2] != 28 {
		return nil, fmt.Errorf("%w: lenet takes 1×28×28 images, dataset samples are %v", config.ErrInvalid, in)
	}
	out, err := outputs(c, classes)
	if err != nil {
		return nil, err
	}
	return nn.NewSequential(
		nn.NewConv2d(o.BLAS, rng, "0", nn.Conv2dSpec{In: 1, Out: 20, Kernel: 5, Bias: true}),
		nn.NewMaxPool2d(2, 2, 0),
		nn.NewReLU(),
		nn.NewConv2d(o.BLAS, rng, "3", nn.Conv2dSpec{In: 20, Out: 50, Kernel: 5, Bias: true}),
		nn.NewMaxPool2d(2, 2, 0),
		nn.NewReLU(),
		nn.NewFlatten(),
		nn.NewLinear(o.BLAS, rng, "7", 800, 500),
		nn.NewReLU(),
		nn.NewLinear(o.BLAS, rng, "9", 500, out),
	), nil
}

// buildResNet is ClassyVision's ResNet (its ResNeXt with cardinality 1):
// a stem (small_input: conv3×3 stride 1; else conv7×7 stride 2 and a 3×3
// max pool), stages of basic or bottleneck blocks whose widths are
// init_planes × reduction × 2^stage (every stage after the first halves
// the resolution in its first block), then global average pooling and the
// fully connected head. Convolutions start from kaiming_normal (fan_out,
// ReLU) as in ClassyVision; with zero_init_bn_residuals each block's last
// BatchNorm starts at weight 0, so blocks start as identities. Parameter
// names follow torchvision's ResNet (conv1, bn1, layerS.B.*, fc).
func buildResNet(c config.Model, in []int, classes int, o Options, rng *rand.Rand) (*nn.Sequential, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("%w: resnet takes C×H×W images, dataset samples are %v", config.ErrInvalid, in)
	}
	if c.OutputDim < classes {
		return nil, fmt.Errorf("%w: model.heads.0.num_classes %d is below the dataset's %d classes", config.ErrInvalid, c.OutputDim, classes)
	}
	planes := c.InitPlanes
	layers := []nn.Layer{}
	if c.SmallInput {
		layers = append(layers,
			nn.NewConv2d(o.BLAS, rng, "conv1", nn.Conv2dSpec{In: in[0], Out: planes, Kernel: 3, Padding: 1}),
			nn.NewBatchNorm("bn1", planes), nn.NewReLU())
	} else {
		layers = append(layers,
			nn.NewConv2d(o.BLAS, rng, "conv1", nn.Conv2dSpec{In: in[0], Out: planes, Kernel: 7, Stride: 2, Padding: 3}),
			nn.NewBatchNorm("bn1", planes), nn.NewReLU(), nn.NewMaxPool2d(3, 2, 1))
	}
	width := planes
	for stage, blocks := range c.NumBlocks {
		out := c.InitPlanes * c.Reduction << stage
		for b := range blocks {
			stride := 1
			if stage > 0 && b == 0 {
				stride = 2
			}
			prefix := fmt.Sprintf("layer%d.%d", stage+1, b)
			var block *nn.Residual
			if c.BasicLayer {
				block = nn.NewBasicBlock(o.BLAS, rng, prefix, width, out, stride)
			} else {
				block = nn.NewBottleneck(o.BLAS, rng, prefix, width, out/c.Reduction, out, stride)
			}
			if c.ZeroInitBNResiduals {
				last := block.Main.Layers[len(block.Main.Layers)-1].(*nn.BatchNorm)
				clear(last.Weight.Value.Data)
			}
			layers = append(layers, block)
			width = out
		}
	}
	fc := nn.NewLinear(o.BLAS, rng, "fc", width, c.OutputDim)
	if c.Head.ZeroInitBias {
		clear(fc.Bias.Value.Data)
	}
	layers = append(layers, nn.NewGlobalAvgPool(), fc)
	m := nn.NewSequential(layers...)
	if out, _ := m.Cost(in); len(out) != 1 {
		return nil, fmt.Errorf("%w: resnet on %v samples gives outputs %v", config.ErrInvalid, in, out)
	}
	nn.Walk(m, func(l nn.Layer) {
		if conv, ok := l.(*nn.Conv2d); ok {
			kaimingNormalFanOut(rng, conv)
		}
	})
	return m, nil
}

// kaimingNormalFanOut redraws conv's weight from N(0, 2/fan_out), fan_out =
// Out·Kernel², PyTorch's kaiming_normal_(mode="fan_out", nonlinearity="relu").
func kaimingNormalFanOut(rng *rand.Rand, conv *nn.Conv2d) {
	s := conv.Spec
	std := math.Sqrt(2 / float64(s.Out*s.Kernel*s.Kernel))
	for i := range conv.Weight.Value.Data {
		conv.Weight.Value.Data[i] = float32(rng.NormFloat64() * std)
	}
}
