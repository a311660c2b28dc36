// Package task turns a resolved config into the things a training run is
// made of — model, loss, optimizer, LR schedule, datasets, meters — as
// ClassyVision's build_task does.
package task

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"gonum.org/v1/gonum/blas"

	"cohort/engine/config"
	"cohort/engine/data"
	"cohort/engine/meter"
	"cohort/engine/nn"
	"cohort/engine/optim"
)

// ErrUnsupported marks a config that asks for something Cohort does not
// have yet; the message names it.
var ErrUnsupported = errors.New("task: not supported")

// Task is everything a run trains with.
type Task struct {
	Config    *config.Config
	Model     *nn.Sequential
	Loss      *nn.SoftmaxCrossEntropy
	Optimizer optim.Optimizer
	// LR gives the learning rate at a training progress in [0,1);
	// LRInterval is "step" or "epoch" (when it is re-evaluated).
	LR         optim.Schedule
	LRInterval string
	Train      data.Dataset
	Test       data.Dataset // nil when the config has no test set
	// TrainBatch and TestBatch are per replica.
	TrainBatch, TestBatch int
	ShuffleTrain          bool
	NumEpochs             int
	TestPhasePeriod       int
	// AccumSteps is how many micro-batches make one optimizer update
	// (ClassyVision's simulated_global_batchsize).
	AccumSteps int
	// TopK lists the accuracy meter's k values (empty: no accuracy meter).
	TopK []int
}

// Options are what task building needs besides the config.
type Options struct {
	// Seed initialises the model (the same on every rank).
	Seed uint64
	// BLAS does the layers' matrix products.
	BLAS blas.Float32
	// WorldSize is the number of replicas (for simulated_global_batchsize).
	WorldSize int
	// DataRoot is where MNIST lives when dataset.*.root is empty.
	DataRoot string
}

// Build makes a Task from a resolved config.
func Build(cfg *config.Config, o Options) (*Task, error) {
	t := &Task{
		Config:          cfg,
		NumEpochs:       cfg.NumEpochs,
		TestPhasePeriod: max(cfg.TestPhasePeriod, 1),
		Loss:            nn.NewSoftmaxCrossEntropy(),
		AccumSteps:      1,
	}
	if cfg.Loss.Name != "cross_entropy" {
		return nil, fmt.Errorf("%w: loss %q (Cohort has cross_entropy)", ErrUnsupported, cfg.Loss.Name)
	}
	var err error
	if t.Train, err = buildDataset(cfg.Dataset.Train, o, true); err != nil {
		return nil, fmt.Errorf("dataset.train: %w", err)
	}
	t.TrainBatch, t.ShuffleTrain = cfg.Dataset.Train.BatchsizePerReplica, cfg.Dataset.Train.UseShuffle
	if cfg.Dataset.Test != nil {
		if t.Test, err = buildDataset(cfg.Dataset.Test, o, false); err != nil {
			return nil, fmt.Errorf("dataset.test: %w", err)
		}
		t.TestBatch = cfg.Dataset.Test.BatchsizePerReplica
	}
	if t.Model, err = buildModel(cfg.Model, t.Train, o); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if t.Optimizer, err = buildOptimizer(cfg.Optimizer, t.Model.Params()); err != nil {
		return nil, fmt.Errorf("optimizer: %w", err)
	}
	spec := scheduleSpec(cfg.Optimizer.LR, cfg.NumEpochs)
	if t.LR, err = optim.NewSchedule(spec); err != nil {
		return nil, fmt.Errorf("optimizer lr schedule: %w", err)
	}
	t.LRInterval = optim.IntervalOf(spec)
	if g := cfg.SimulatedGlobalBatchsize; g > 0 {
		per := t.TrainBatch * max(o.WorldSize, 1)
		if g%per != 0 {
			return nil, fmt.Errorf("%w: simulated_global_batchsize %d is not a multiple of batchsize_per_replica × world size = %d", config.ErrInvalid, g, per)
		}
		t.AccumSteps = g / per
	}
	if cfg.ClipGradNorm > 0 {
		return nil, fmt.Errorf("%w: clip_grad_norm (remove it from the config)", ErrUnsupported)
	}
	if cfg.Meters.Accuracy != nil {
		t.TopK = cfg.Meters.Accuracy.TopK
		out, _ := t.Model.Cost(t.Train.SampleShape())
		for _, k := range t.TopK {
			if k > out[0] {
				return nil, fmt.Errorf("%w: meters.accuracy.topk %d exceeds the model's %d outputs", config.ErrInvalid, k, out[0])
			}
		}
	}
	return t, nil
}

// NewMeters returns fresh meters for a phase: loss, then accuracy if asked.
func (t *Task) NewMeters() []meter.Meter {
	ms := []meter.Meter{&meter.Loss{}}
	if len(t.TopK) > 0 {
		acc, _ := meter.NewAccuracy(t.TopK) // k ≥ 1 checked by config
		ms = append(ms, acc)
	}
	return ms
}

func buildDataset(c *config.Dataset, o Options, train bool) (data.Dataset, error) {
	if len(c.Transforms) > 0 {
		return nil, fmt.Errorf("%w: transforms %v (image transforms are not built yet; remove them)", ErrUnsupported, transformNames(c.Transforms))
	}
	var d data.Dataset
	var err error
	switch c.Name {
	case "mnist":
		root := c.Root
		if root == "" {
			root = o.DataRoot
		}
		d, err = data.LoadMNIST(root, train)
	case "synthetic", "synthetic_image":
		crop := c.CropSize
		if crop == 0 {
			crop = 28
		}
		channels := 1
		if c.Name == "synthetic_image" {
			channels = 3
		}
		classes := c.NumClasses
		if classes == 0 {
			classes = 10
		}
		n := c.NumSamples
		if n == 0 {
			n = 1024
		}
		split := uint64(0)
		if !train {
			split = 1 // same classes as the train split, other samples
		}
		d, err = data.NewSynthetic(n, classes, []int{channels, crop, crop}, c.ClassRatio, uint64(c.Seed), split)
	default:
		return nil, fmt.Errorf("%w: dataset %q", ErrUnsupported, c.Name)
	}
	if err != nil {
		return nil, err
	}
	return data.Limit(d, c.NumSamples), nil
}

func transformNames(ts []map[string]any) string {
	var names []string
	for _, t := range ts {
		names = append(names, fmt.Sprint(t["name"]))
	}
	return strings.Join(names, ", ")
}

func buildModel(c config.Model, train data.Dataset, o Options) (*nn.Sequential, error) {
	switch c.Name {
	case "mlp":
		return buildMLP(c, train, o)
	case "lenet":
		return buildLeNet(c, train, o)
	}
	return nil, fmt.Errorf("%w: model %q (Cohort has mlp, lenet)", ErrUnsupported, c.Name)
}

// buildLeNet is conv5×5×20-relu-pool2-conv5×5×50-relu-pool2-fc500-relu-fc10
// (the layout of LeCun et al.'s LeNet and of the PyTorch anchor), with
// PyTorch's nn.Sequential parameter names.
func buildLeNet(c config.Model, train data.Dataset, o Options) (*nn.Sequential, error) {
	shape := train.SampleShape()
	if len(shape) != 3 || shape[0] != 1 || shape[1] != 28 || shape[2] != 28 {
		return nil, fmt.Errorf("%w: lenet takes 1×28×28 images, dataset samples are %v", config.ErrInvalid, shape)
	}
	out, err := outputs(c, train)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x1417))
	m := nn.NewSequential(
		nn.NewConv2d(o.BLAS, rng, "0", nn.Conv2dSpec{In: 1, Out: 20, Kernel: 5, Bias: true}),
		nn.NewReLU(),
		nn.NewMaxPool2d(2, 2, 0),
		nn.NewConv2d(o.BLAS, rng, "3", nn.Conv2dSpec{In: 20, Out: 50, Kernel: 5, Bias: true}),
		nn.NewReLU(),
		nn.NewMaxPool2d(2, 2, 0),
		nn.NewFlatten(),
		nn.NewLinear(o.BLAS, rng, "7", 800, 500),
		nn.NewReLU(),
		nn.NewLinear(o.BLAS, rng, "9", 500, out),
	)
	m.SkipInputGrad = true
	return m, nil
}

// outputs is the model's head size: model.output_dim, or the dataset's
// class count when it is left out; never fewer outputs than classes.
func outputs(c config.Model, train data.Dataset) (int, error) {
	out := c.OutputDim
	if out == 0 {
		out = train.NumClasses()
	}
	if out < train.NumClasses() {
		return 0, fmt.Errorf("%w: model.output_dim %d is below the dataset's %d classes", config.ErrInvalid, out, train.NumClasses())
	}
	return out, nil
}

func buildMLP(c config.Model, train data.Dataset, o Options) (*nn.Sequential, error) {
	in := data.SampleSize(train)
	if c.InputDim != 0 && c.InputDim != in {
		return nil, fmt.Errorf("%w: model.input_dim %d does not match the dataset's %v = %d values per sample", config.ErrInvalid, c.InputDim, train.SampleShape(), in)
	}
	out, err := outputs(c, train)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x1417))
	var layers []nn.Layer
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
	prev := in
	for _, h := range c.HiddenDims {
		add(nn.NewLinear(o.BLAS, rng, fmt.Sprint(len(layers)), prev, h))
		add(nn.NewReLU())
		if err := dropout(); err != nil {
			return nil, err
		}
		prev = h
	}
	add(nn.NewLinear(o.BLAS, rng, fmt.Sprint(len(layers)), prev, out))
	m := nn.NewSequential(layers...)
	m.SkipInputGrad = true
	return m, nil
}

func buildOptimizer(c config.Optimizer, params []*nn.Param) (optim.Optimizer, error) {
	switch c.Name {
	case "sgd":
		return optim.NewSGD(params, float32(c.Momentum), float32(c.WeightDecay), c.Nesterov)
	case "adam":
		return optim.NewAdam(params, float32(c.Betas[0]), float32(c.Betas[1]), float32(c.Eps), float32(c.WeightDecay))
	case "adamw":
		return optim.NewAdamW(params, float32(c.Betas[0]), float32(c.Betas[1]), float32(c.Eps), float32(c.WeightDecay))
	}
	return nil, fmt.Errorf("%w: optimizer %q (Cohort has sgd, adam, adamw)", ErrUnsupported, c.Name)
}

// scheduleSpec converts the config's schedule, giving schedules without
// num_epochs the task's, as ClassyVision does.
func scheduleSpec(s config.Schedule, numEpochs int) optim.ScheduleSpec {
	if s.NumEpochs == 0 {
		s.NumEpochs = numEpochs
	}
	spec := optim.ScheduleSpec{
		Name: s.Name, Value: s.Value, StartValue: s.StartValue, EndValue: s.EndValue,
		Values: s.Values, Milestones: s.Milestones, NumEpochs: s.NumEpochs,
		Lengths: s.Lengths, IntervalScaling: s.IntervalScaling, UpdateInterval: s.UpdateInterval,
	}
	for _, sub := range s.Schedulers {
		spec.Schedulers = append(spec.Schedulers, scheduleSpec(sub, s.NumEpochs))
	}
	return spec
}
