package gpu

// Planning and backward scheduling of ResNets and MLPs with BatchNorm, as
// engine/task builds them; these tests need no GPU.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"

	"cohort/engine/config"
	"cohort/engine/cpu"
	"cohort/engine/nn"
	"cohort/engine/task"
)

// buildTask builds engine/task's task for a config, as `cohort train` does.
func buildTask(t testing.TB, seed uint64, yaml string) *task.Task {
	t.Helper()
	cfg, err := config.Parse("task.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := task.Build(cfg, task.Options{Seed: seed, BLAS: cpu.BLAS(), WorldSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// resnetTask is engine/task's ResNet on synthetic_image samples of crop×crop:
// two stages of two and one blocks, 4 initial planes, the last block's
// BatchNorms not zeroed (so every branch computes something). Stage 1
// starts with identity shortcuts (basic blocks) or a stride-1 projection
// (bottleneck), stage 2 with a stride-2 projection.
func resnetTask(t testing.TB, seed uint64, basic, smallInput bool, crop int) *task.Task {
	t.Helper()
	reduction := 4
	if basic {
		reduction = 1
	}
	return buildTask(t, seed, fmt.Sprintf(`name: resnet
num_epochs: 1
dataset:
  train: {name: synthetic_image, num_samples: 64, crop_size: %d, class_ratio: 0.5, seed: 0, batchsize_per_replica: 16}
model:
  name: resnet
  num_blocks: [2, 1]
  small_input: %v
  basic_layer: %v
  init_planes: 4
  reduction: %d
  zero_init_bn_residuals: false
  heads: [{name: fully_connected, unique_id: default_head, num_classes: 2, fork_block: block1-0, in_plane: %d}]
loss: {name: CrossEntropyLoss}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.0005}
meters: {accuracy: {topk: [1]}}
`, crop, smallInput, basic, reduction, 8*reduction))
}

// bnMLPTask is engine/task's MLP with BatchNorm1d after every hidden
// Linear, and with first_batchnorm on the input too.
func bnMLPTask(t testing.TB, seed uint64, first bool) *task.Task {
	t.Helper()
	return buildTask(t, seed, fmt.Sprintf(`name: bnmlp
num_epochs: 1
dataset:
  train: {name: synthetic, num_samples: 64, num_classes: 5, crop_size: 6, batchsize_per_replica: 16}
model: {name: mlp, hidden_dims: [24, 16], use_batchnorm: true, first_batchnorm: %v}
loss: {name: CrossEntropyLoss}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
meters: {accuracy: {topk: [1]}}
`, first))
}

type resnetCase struct{ basic, small bool }

func (c resnetCase) String() string {
	kind := "bottleneck"
	if c.basic {
		kind = "basic"
	}
	return fmt.Sprintf("%s_small%v", kind, c.small)
}

var resnetCases = []resnetCase{{true, true}, {true, false}, {false, true}, {false, false}}

func TestPlanResNet(t *testing.T) {
	for _, c := range resnetCases {
		t.Run(c.String(), func(t *testing.T) {
			tk := resnetTask(t, 1, c.basic, c.small, 12)
			in := tk.InputShape()
			net, err := plan(tk.Model, in...)
			if err != nil {
				t.Fatal(err)
			}
			checkLayout(t, net, tk.Model)
			kinds := map[layerKind]int{}
			for _, l := range net.layers {
				kinds[l.Kind]++
			}
			want := map[layerKind]int{}
			nn.Walk(tk.Model, func(l nn.Layer) {
				switch l.(type) {
				case *nn.Conv2d:
					want[convLayer]++
				case *nn.BatchNorm:
					want[normLayer]++
				case *nn.Residual:
					want[addLayer]++
				case *nn.MaxPool2d:
					want[poolLayer]++
				case *nn.GlobalAvgPool:
					want[avgLayer]++
				case *nn.Linear:
					want[linearLayer]++
				}
			})
			if fmt.Sprint(kinds) != fmt.Sprint(want) {
				t.Errorf("layer kinds %v, the CPU model has %v", kinds, want)
			}
			if out, _ := tk.Model.Cost(in); numel(out) != net.layers[len(net.layers)-1].Out {
				t.Errorf("CPU model gives %v per sample, the plan %d", out, net.layers[len(net.layers)-1].Out)
			}
			if net.start != 0 || net.layers[0].Kind != convLayer || net.layers[1].Kind != normLayer || !net.layers[1].ReLU {
				t.Errorf("stem: start %d, layers %v %v", net.start, net.layers[0], net.layers[1])
			}
			for k, l := range net.layers {
				if l.Kind != addLayer {
					continue
				}
				m, s := &net.layers[l.short-1], &net.layers[k-1]
				identity := l.short == k
				if !l.ReLU || l.src != m.dst || (identity && l.src2 != net.layers[l.main].src) || (!identity && l.src2 != s.dst) {
					t.Errorf("add %d = %+v does not join its branches", k, l)
				}
				if !identity && net.layers[l.short].src != net.layers[l.main].src {
					t.Errorf("block ending at %d: the shortcut reads %d, the main branch %d", k, net.layers[l.short].src, net.layers[l.main].src)
				}
			}
		})
	}
}

// checkLayout checks net's parameter slots against the CPU trainer's
// gradient layout and its buffer slots against nn.Buffers.
func checkLayout(t *testing.T, net *network, model *nn.Sequential) {
	t.Helper()
	byName := paramsByName(model.Params())
	check := func(what string, slots []Slot, names []string, of map[string]*nn.Param) {
		if len(slots) != len(names) {
			t.Fatalf("%d %s slots, want %d", len(slots), what, len(names))
		}
		off := 0
		for i, s := range slots {
			p := of[s.Name]
			if s.Name != names[i] || s.Offset != off || p == nil || s.Len != p.Value.Len() || !slices.Equal(s.Shape, p.Value.Shape) {
				t.Errorf("%s slot %d = %+v, want %s at %d", what, i, s, names[i], off)
			}
			off += s.Len
		}
	}
	check("parameter", net.slots, bucketOrder(model), byName)
	bufs, names := map[string]*nn.Param{}, []string(nil)
	for _, b := range nn.Buffers(model) {
		bufs[b.Name] = b
		names = append(names, b.Name)
	}
	check("buffer", net.buffers, names, bufs)
}

func TestPlanBatchNormMLP(t *testing.T) {
	for _, first := range []bool{false, true} {
		tk := bnMLPTask(t, 1, first)
		net, err := plan(tk.Model, tk.InputShape()...)
		if err != nil {
			t.Fatal(err)
		}
		checkLayout(t, net, tk.Model)
		var kinds []string
		for _, l := range net.layers {
			kinds = append(kinds, fmt.Sprintf("%v%d/%v", l.Kind, l.Out, l.ReLU))
		}
		want := "[linear24/false batchnorm24/true linear16/false batchnorm16/true linear5/false]"
		if first {
			want = "[batchnorm36/false " + want[1:]
		}
		if got := fmt.Sprint(kinds); got != want {
			t.Errorf("first_batchnorm %v: layers %s, want %s", first, got, want)
		}
		if net.start != 0 || (first && net.layers[0].Plane != 1) {
			t.Errorf("first_batchnorm %v: start %d, first layer %+v", first, net.start, net.layers[0])
		}
	}
}

func TestPlanResidualReLU(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	conv := func(name string) nn.Layer {
		return nn.NewConv2d(gonum.Implementation{}, rng, name, nn.Conv2dSpec{In: 2, Out: 2, Kernel: 3, Padding: 1})
	}
	for _, relu := range []bool{false, true} {
		m := nn.NewSequential(conv("a"), nn.NewResidual(nn.NewSequential(conv("b")), nil, relu),
			nn.NewGlobalAvgPool(), nn.NewLinear(gonum.Implementation{}, rng, "fc", 2, 3))
		net, err := plan(m, 2, 5, 5)
		if err != nil {
			t.Fatal(err)
		}
		if add := net.layers[2]; add.Kind != addLayer || add.ReLU != relu || add.src != 2 || add.src2 != 1 {
			t.Errorf("relu %v: block's add %+v", relu, add)
		}
	}
}

func TestPlanRejectsBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	conv := func(in, out, stride int) nn.Layer {
		return nn.NewConv2d(gonum.Implementation{}, rng, "c", nn.Conv2dSpec{In: in, Out: out, Kernel: 3, Stride: stride, Padding: 1})
	}
	seq := nn.NewSequential
	drop, err := nn.NewDropout(0.5)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*nn.Residual{
		"shapes differ":      nn.NewResidual(seq(conv(2, 2, 2)), nil, true),
		"relu first":         nn.NewResidual(seq(nn.NewReLU(), conv(2, 2, 1)), nil, true),
		"dropout in block":   nn.NewResidual(seq(conv(2, 2, 1), drop), nil, true),
		"empty main":         nn.NewResidual(seq(), nil, true),
		"empty shortcut":     nn.NewResidual(seq(conv(2, 2, 1)), seq(nn.NewFlatten()), true),
		"flattening branch":  nn.NewResidual(seq(conv(2, 2, 1), nn.NewFlatten()), nil, true),
		"batchnorm channels": nn.NewResidual(seq(conv(2, 2, 1), nn.NewBatchNorm("bn", 3)), nil, true),
	} {
		m := seq(conv(2, 2, 1), block, nn.NewGlobalAvgPool())
		if _, err := plan(m, 2, 6, 6); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
	}
}

// TestSchedule runs each model's backward schedule on a stand-in network
// of scalars: every activation is one number, each layer multiplies its
// input by its own random factor (an add sums its two inputs), and a ReLU
// multiplies by another factor, so applying it twice or forgetting it
// shows. The scalar "parameter gradients" the schedule computes, with
// slots starting as NaN, must equal reverse-mode differentiation of that
// network; a slot reused while still needed, a missing sum or a misrouted
// gradient would change them.
func TestSchedule(t *testing.T) {
	models := map[string]*task.Task{"lenet": lenetTask(t, 1)}
	for _, c := range resnetCases {
		models["resnet_"+c.String()] = resnetTask(t, 1, c.basic, c.small, 12)
	}
	for _, first := range []bool{false, true} {
		models[fmt.Sprintf("bnmlp_first%v", first)] = bnMLPTask(t, 1, first)
	}
	// Blocks of flat features whose branches end in a Linear's ReLU, which
	// must not mask a gradient the other branch still reads, and a block
	// nested in another's main branch.
	rng := rand.New(rand.NewPCG(1, 2))
	lin := func(in, out int) nn.Layer { return nn.NewLinear(gonum.Implementation{}, rng, "l", in, out) }
	seq := nn.NewSequential
	inner := nn.NewResidual(seq(lin(4, 4)), seq(lin(4, 4), nn.NewReLU()), true)
	models["nested"] = &task.Task{Model: seq(lin(6, 4),
		nn.NewResidual(seq(lin(4, 4), nn.NewReLU(), inner), seq(lin(4, 4), nn.NewReLU()), false),
		nn.NewResidual(seq(lin(4, 4), nn.NewReLU()), nil, true), lin(4, 3))}
	for name, tk := range models {
		t.Run(name, func(t *testing.T) {
			var in []int
			if tk.Config != nil {
				in = tk.InputShape()
			}
			net, err := plan(tk.Model, in...)
			if err != nil {
				t.Fatal(err)
			}
			sched := newSchedule(net)
			// The block's output gradient, the shortcut's input gradient,
			// and the main branch's current and next gradients.
			if sched.slots > 4 {
				t.Errorf("%d gradient slots; a ResNet needs 4", sched.slots)
			}
			got, want := runScalarSchedule(net, sched), scalarGradients(net)
			for k := range net.layers {
				if k < net.start || !net.layers[k].hasParams() {
					if !math.IsNaN(got[k]) {
						t.Errorf("layer %d (%v) got a parameter gradient", k, net.layers[k].Kind)
					}
					continue
				}
				if !(math.Abs(got[k]-want[k]) <= 1e-12*math.Abs(want[k])) {
					t.Errorf("layer %d (%v): gradient %v, want %v", k, net.layers[k].Kind, got[k], want[k])
				}
			}
		})
	}
}

// scalarNet is the stand-in network's factors: layer k multiplies by
// a[k] and its ReLU by m[k]; val are the activations of a forward pass
// from input 1.
type scalarNet struct{ a, m, val []float64 }

func newScalarNet(net *network) scalarNet {
	r := rand.New(rand.NewPCG(7, 7))
	s := scalarNet{a: make([]float64, len(net.layers)), m: make([]float64, len(net.layers)), val: make([]float64, len(net.values))}
	s.val[0] = 1
	for k, l := range net.layers {
		s.a[k], s.m[k] = 0.5+r.Float64(), 1
		if l.ReLU {
			s.m[k] = 0.25 + r.Float64()/2
		}
		v := s.a[k] * s.val[l.src]
		if l.Kind == addLayer {
			v = s.val[l.src] + s.val[l.src2]
		}
		s.val[l.dst] = s.m[k] * v
	}
	return s
}

// scalarGradients is reverse-mode differentiation of the stand-in network
// with respect to each layer's factor, the loss being the last activation.
func scalarGradients(net *network) []float64 {
	s := newScalarNet(net)
	grad := make([]float64, len(net.values))
	grad[len(net.values)-1] = 1
	out := make([]float64, len(net.layers))
	for k := len(net.layers) - 1; k >= 0; k-- {
		l := net.layers[k]
		g := grad[l.dst] * s.m[k]
		if l.Kind == addLayer {
			grad[l.src] += g
			grad[l.src2] += g
			continue
		}
		out[k] = g * s.val[l.src]
		grad[l.src] += s.a[k] * g
	}
	return out
}

// runScalarSchedule executes sched on the stand-in network as Model's
// backward does on the device, and returns each layer's factor gradient
// (NaN for layers whose backward did not run).
func runScalarSchedule(net *network, sched schedule) []float64 {
	s := newScalarNet(net)
	slots := make([]float64, sched.slots)
	for i := range slots {
		slots[i] = math.NaN()
	}
	slots[sched.loss] = 1
	out := make([]float64, len(net.layers))
	for k := range out {
		out[k] = math.NaN()
	}
	for _, st := range sched.steps {
		l := net.layers[st.layer]
		switch st.kind {
		case maskStep:
			slots[st.dx] = slots[st.dy] * s.m[st.layer]
		case layerStep:
			g := slots[st.dy]
			if l.ReLU && l.Kind != linearLayer {
				g *= s.m[st.layer] // the layer's kernels mask
			}
			if l.hasParams() {
				out[st.layer] = g * s.val[l.src]
			}
			if st.dx >= 0 {
				slots[st.dx] = s.a[st.layer] * g
			}
		case sumStep:
			slots[st.dx] = slots[st.a] + slots[st.b]
		}
	}
	return out
}
