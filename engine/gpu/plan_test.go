package gpu

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"

	"cohort/cuda"
	"cohort/engine/nn"
	"cohort/engine/task"
)

// mlp builds the CPU engine's MLP the way engine/task does: Flatten, then
// Linear+ReLU per hidden size, then the output Linear, named by index.
func mlp(seed uint64, sizes ...int) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 0x1417))
	layers := []nn.Layer{nn.NewFlatten()}
	for i := 0; i+1 < len(sizes); i++ {
		layers = append(layers, nn.NewLinear(gonum.Implementation{}, rng, fmt.Sprint(len(layers)), sizes[i], sizes[i+1]))
		if i+2 < len(sizes) {
			layers = append(layers, nn.NewReLU())
		}
	}
	m := nn.NewSequential(layers...)
	m.SkipInputGrad = true
	return m
}

func TestPlanLayout(t *testing.T) {
	net, err := plan(mlp(1, 784, 512, 256, 10))
	if err != nil {
		t.Fatal(err)
	}
	specs, slots := net.layers, net.slots
	want := []struct {
		name   string
		offset int
	}{
		{"5.bias", 0}, {"5.weight", 10}, {"3.bias", 10 + 2560}, {"3.weight", 10 + 2560 + 256},
		{"1.bias", 10 + 2560 + 256 + 131072}, {"1.weight", 10 + 2560 + 256 + 131072 + 512},
	}
	if len(slots) != len(want) {
		t.Fatalf("%d slots, want %d: %+v", len(slots), len(want), slots)
	}
	for i, w := range want {
		if slots[i].Name != w.name || slots[i].Offset != w.offset {
			t.Errorf("slot %d = %s@%d, want %s@%d", i, slots[i].Name, slots[i].Offset, w.name, w.offset)
		}
	}
	if len(specs) != 3 || !specs[0].ReLU || !specs[1].ReLU || specs[2].ReLU {
		t.Errorf("specs: %+v", specs)
	}
	if specs[0].w.Name != "1.weight" || specs[0].w.Len != 784*512 {
		t.Errorf("first layer's weight slot = %+v", specs[0].w)
	}
}

func TestPlanRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lin := func(name string, in, out int) nn.Layer {
		return nn.NewLinear(gonum.Implementation{}, rng, name, in, out)
	}
	drop, err := nn.NewDropout(0.5)
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*nn.Sequential{
		"empty":         nn.NewSequential(nn.NewFlatten()),
		"relu first":    nn.NewSequential(nn.NewReLU(), lin("1", 4, 2)),
		"double relu":   nn.NewSequential(lin("0", 4, 3), nn.NewReLU(), nn.NewReLU(), lin("3", 3, 2)),
		"dropout":       nn.NewSequential(lin("0", 4, 3), drop, lin("2", 3, 2)),
		"size mismatch": nn.NewSequential(lin("0", 4, 3), lin("1", 5, 2)),
	} {
		if _, err := plan(m); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
	}
}

// lenetTask builds engine/task's LeNet, as `cohort train` does for
// configs/mnist_lenet.yaml, on synthetic 1×28×28 samples.
func lenetTask(t testing.TB, seed uint64) *task.Task {
	t.Helper()
	return buildTask(t, seed, `name: lenet
num_epochs: 1
dataset:
  train: {name: synthetic, num_samples: 64, num_classes: 10, crop_size: 28, batchsize_per_replica: 32}
  test: {name: synthetic, num_samples: 64, num_classes: 10, crop_size: 28, batchsize_per_replica: 64}
model: {name: lenet}
loss: {name: CrossEntropyLoss}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
meters: {accuracy: {topk: [1]}}
`)
}

// bucketOrder is the CPU trainer's gradient layout (engine/train's
// buckets): the last layer first, each layer's Params() last first.
func bucketOrder(m *nn.Sequential) []string {
	var names []string
	for i := len(m.Layers) - 1; i >= 0; i-- {
		ps := m.Layers[i].Params()
		for j := len(ps) - 1; j >= 0; j-- {
			names = append(names, ps[j].Name)
		}
	}
	return names
}

func TestPlanLeNet(t *testing.T) {
	tk := lenetTask(t, 1)
	in := tk.InputShape()
	net, err := plan(tk.Model, in...)
	if err != nil {
		t.Fatal(err)
	}
	specs, slots := net.layers, net.slots
	win := func(c, h, k, s, oh int) cuda.Window {
		return cuda.Window{C: c, H: h, W: h, K: k, S: s, OH: oh, OW: oh}
	}
	want := []layerSpec{
		{Kind: convLayer, In: 784, Out: 20 * 24 * 24, Win: win(1, 28, 5, 1, 24), Channels: 20},
		{Kind: poolLayer, In: 20 * 24 * 24, Out: 20 * 12 * 12, ReLU: true, Win: win(20, 24, 2, 2, 12)},
		{Kind: convLayer, In: 20 * 12 * 12, Out: 50 * 8 * 8, Win: win(20, 12, 5, 1, 8), Channels: 50},
		{Kind: poolLayer, In: 50 * 8 * 8, Out: 800, ReLU: true, Win: win(50, 8, 2, 2, 4)},
		{Kind: linearLayer, In: 800, Out: 500, ReLU: true},
		{Kind: linearLayer, In: 500, Out: 10},
	}
	if len(specs) != len(want) {
		t.Fatalf("%d layers, want %d: %+v", len(specs), len(want), specs)
	}
	for i, w := range want {
		s := specs[i]
		if s.Kind != w.Kind || s.In != w.In || s.Out != w.Out || s.ReLU != w.ReLU || s.Win != w.Win || s.Channels != w.Channels {
			t.Errorf("layer %d = %+v\nwant %+v", i, s, w)
		}
		if s.hasParams() != (w.Kind != poolLayer) {
			t.Errorf("layer %d: hasParams = %v", i, s.hasParams())
		}
	}
	if out, _ := tk.Model.Cost(in); numel(out) != specs[len(specs)-1].Out {
		t.Errorf("CPU model gives %v per sample, the plan %d", out, specs[len(specs)-1].Out)
	}
	order := bucketOrder(tk.Model)
	if len(slots) != len(order) {
		t.Fatalf("%d slots, the trainer has %d gradients", len(slots), len(order))
	}
	off := 0
	byName := paramsByName(tk.Model.Params())
	for i, s := range slots {
		p := byName[s.Name]
		if s.Name != order[i] || s.Offset != off || p == nil || s.Len != p.Value.Len() || fmt.Sprint(s.Shape) != fmt.Sprint(p.Value.Shape) {
			t.Errorf("slot %d = %+v, want %s at %d", i, s, order[i], off)
		}
		off += s.Len
	}
	if specs[0].w.Name != "0.weight" || specs[0].b.Name != "0.bias" || specs[2].w.Name != "3.weight" || specs[2].w.Offset+specs[2].w.Len != specs[0].b.Offset {
		t.Errorf("conv slots %+v %+v / %+v", specs[0].w, specs[0].b, specs[2].w)
	}
}

// TestPlanMLPTaskLayout checks an MLP from engine/task with the sample
// shape given, as NewAccelerated passes it, against the trainer's layout.
func TestPlanMLPTaskLayout(t *testing.T) {
	m := mlp(3, 784, 64, 10)
	net, err := plan(m, 1, 28, 28)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range bucketOrder(m) {
		if slots := net.slots; slots[i].Name != name {
			t.Errorf("slot %d is %s, want %s", i, slots[i].Name, name)
		}
	}
	if _, err := plan(m, 1, 28, 27); !errors.Is(err, ErrUnsupported) {
		t.Errorf("784-input MLP on 1×28×27 samples: err = %v, want ErrUnsupported", err)
	}
}

func TestPlanConvWithoutBias(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	conv := nn.NewConv2d(gonum.Implementation{}, rng, "c", nn.Conv2dSpec{In: 3, Out: 4, Kernel: 3, Stride: 2, Padding: 1})
	m := nn.NewSequential(conv, nn.NewReLU(), nn.NewFlatten(), nn.NewLinear(gonum.Implementation{}, rng, "fc", 4*4*4, 5))
	net, err := plan(m, 3, 7, 8)
	if err != nil {
		t.Fatal(err)
	}
	specs, slots := net.layers, net.slots
	if specs[0].Win.OH != 4 || specs[0].Win.OW != 4 || !specs[0].ReLU || specs[0].bias != nil {
		t.Errorf("conv spec %+v", specs[0])
	}
	var names []string
	for _, s := range slots {
		names = append(names, s.Name)
	}
	if got := fmt.Sprint(names); got != "[fc.bias fc.weight c.weight]" {
		t.Errorf("slots %s", got)
	}
}

func TestPlanRejectsImages(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	conv := func(in, out, k int) nn.Layer {
		return nn.NewConv2d(gonum.Implementation{}, rng, "c", nn.Conv2dSpec{In: in, Out: out, Kernel: k, Bias: true})
	}
	lin := func(in, out int) nn.Layer { return nn.NewLinear(gonum.Implementation{}, rng, "l", in, out) }
	wide := nn.NewMaxPool2d(2, 2, 1)
	wide.Padding = 2 // more than half the window: some windows would be all padding
	for name, c := range map[string]struct {
		m    *nn.Sequential
		in   []int
		want error
	}{
		"no sample shape":      {nn.NewSequential(conv(1, 2, 3), nn.NewFlatten(), lin(2*4*4, 3)), nil, ErrInput},
		"bad sample shape":     {nn.NewSequential(conv(1, 2, 3), nn.NewFlatten(), lin(2*4*4, 3)), []int{1, 0, 6}, ErrInput},
		"channels":             {nn.NewSequential(conv(3, 2, 3), nn.NewFlatten(), lin(2*4*4, 3)), []int{1, 6, 6}, ErrUnsupported},
		"kernel over image":    {nn.NewSequential(conv(1, 2, 7), nn.NewFlatten(), lin(2, 3)), []int{1, 6, 6}, ErrUnsupported},
		"conv after linear":    {nn.NewSequential(lin(36, 36), conv(1, 2, 3)), []int{1, 6, 6}, ErrUnsupported},
		"conv after flatten":   {nn.NewSequential(nn.NewFlatten(), conv(1, 2, 3)), []int{1, 6, 6}, ErrUnsupported},
		"pool padding":         {nn.NewSequential(conv(1, 2, 3), wide, nn.NewFlatten(), lin(18, 3)), []int{1, 6, 6}, ErrUnsupported},
		"pools only":           {nn.NewSequential(nn.NewMaxPool2d(2, 2, 0)), []int{1, 6, 6}, ErrUnsupported},
		"relu after relu":      {nn.NewSequential(conv(1, 2, 3), nn.NewReLU(), nn.NewReLU()), []int{1, 6, 6}, ErrUnsupported},
		"linear size mismatch": {nn.NewSequential(conv(1, 2, 3), nn.NewFlatten(), lin(33, 3)), []int{1, 6, 6}, ErrUnsupported},
	} {
		if _, err := plan(c.m, c.in...); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
}
