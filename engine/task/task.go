// Package task turns a resolved config into the things a training run is
// made of — model, loss, optimizer, LR schedule, datasets, meters — as
// ClassyVision's build_task does.
package task

import (
	"errors"
	"fmt"
	"slices"

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
	// TrainTransforms and TestTransforms run on each sample (nil: none).
	TrainTransforms, TestTransforms *data.Pipeline
	// TrainWorkers and TestWorkers are the batch-loading goroutines.
	TrainWorkers, TestWorkers int
	// SyncBatchNorm combines BatchNorm statistics across ranks.
	SyncBatchNorm bool
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
		SyncBatchNorm:   cfg.BatchNormSync,
	}
	if cfg.Loss.Name != "cross_entropy" {
		return nil, fmt.Errorf("%w: loss %q (Cohort has cross_entropy)", ErrUnsupported, cfg.Loss.Name)
	}
	var err error
	if t.Train, t.TrainTransforms, err = buildDataset(cfg.Dataset.Train, o, true); err != nil {
		return nil, fmt.Errorf("dataset.train: %w", err)
	}
	t.TrainBatch, t.ShuffleTrain = cfg.Dataset.Train.BatchsizePerReplica, cfg.Dataset.Train.UseShuffle
	t.TrainWorkers = cfg.Dataset.Train.NumWorkers
	in := t.InputShape()
	if cfg.Dataset.Test != nil {
		if t.Test, t.TestTransforms, err = buildDataset(cfg.Dataset.Test, o, false); err != nil {
			return nil, fmt.Errorf("dataset.test: %w", err)
		}
		t.TestBatch, t.TestWorkers = cfg.Dataset.Test.BatchsizePerReplica, cfg.Dataset.Test.NumWorkers
		if test := sampleShape(t.Test, t.TestTransforms); !slices.Equal(test, in) {
			return nil, fmt.Errorf("%w: dataset.test samples are %v after their transforms, dataset.train's %v; the model takes one shape", config.ErrInvalid, test, in)
		}
	}
	if t.Model, err = buildModel(cfg.Model, in, t.Train.NumClasses(), o); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if err := t.checkBatchNormBatches(max(o.WorldSize, 1)); err != nil {
		return nil, err
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
		out, _ := t.Model.Cost(in)
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

// checkBatchNormBatches refuses a model with BatchNorm whose training split
// leaves a rank a batch of one sample: batch statistics of one value per
// channel are undefined (PyTorch raises "Expected more than 1 value per
// channel when training"), and finding out mid-epoch would waste the run.
func (t *Task) checkBatchNormBatches(world int) error {
	hasBN := false
	nn.Walk(t.Model, func(l nn.Layer) {
		if _, ok := l.(*nn.BatchNorm); ok {
			hasBN = true
		}
	})
	perRank := (t.Train.Len() + world - 1) / world
	if !hasBN || perRank%t.TrainBatch != 1 {
		return nil
	}
	return fmt.Errorf("%w: dataset.train: %d samples over %d rank(s) in batches of %d leave each rank a last batch of 1 sample, on which BatchNorm cannot train; change num_samples or batchsize_per_replica",
		config.ErrInvalid, t.Train.Len(), world, t.TrainBatch)
}

// InputShape is one training sample's shape as the model sees it: after
// the train transforms.
func (t *Task) InputShape() []int { return sampleShape(t.Train, t.TrainTransforms) }

// sampleShape is ds's sample shape after p (already checked to fit).
func sampleShape(ds data.Dataset, p *data.Pipeline) []int {
	if p == nil {
		return ds.SampleShape()
	}
	shape, _ := p.OutShape(ds.SampleShape())
	return shape
}

func buildDataset(c *config.Dataset, o Options, train bool) (data.Dataset, *data.Pipeline, error) {
	var d data.Dataset
	var err error
	switch c.Name {
	case "mnist":
		root := c.Root
		if root == "" {
			root = o.DataRoot
		}
		d, err = data.LoadMNIST(root, train)
	case "synthetic_image":
		d, err = data.NewSyntheticImage(c.NumSamples, c.CropSize, c.ClassRatio, uint64(c.Seed))
	case "synthetic":
		split := uint64(0)
		if !train {
			split = 1 // same classes as the train split, other samples
		}
		d, err = data.NewSynthetic(c.NumSamples, c.NumClasses, []int{1, c.CropSize, c.CropSize}, c.ClassRatio, uint64(c.Seed), split)
	default:
		return nil, nil, fmt.Errorf("%w: dataset %q", ErrUnsupported, c.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	d = data.Limit(d, c.NumSamples)
	if len(c.Transforms) == 0 {
		return d, nil, nil
	}
	p, err := data.ParseTransforms(c.Transforms)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	if _, err := p.OutShape(d.SampleShape()); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	return d, p, nil
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
