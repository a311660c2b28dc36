// Package config loads Cohort task configs: ClassyVision-style task configs
// (YAML, or JSON, which is YAML) merged in order, then Hydra-style
// command-line overrides, then a strict decode into the typed Config.
//
// Everything wrong with a config is an error wrapping ErrInvalid (the CLI
// maps it to exit code 2) whose message names the file:line of the offending
// text, or the override that set it, and the fix.
//
// # Merging and overrides
//
// Files are read in order; a later file's mappings merge key by key into the
// earlier ones, scalars and lists replace, and a null value unsets a key
// (null keys are also exempt from the unknown-key check, so a layer can null
// out a key the next section no longer knows). Then the Hydra overrides
// apply in order:
//
//	a.b=v    set an existing key (error naming +a.b=v if it is missing);
//	         a mapping value merges into a mapping, as in Hydra
//	+a.b=v   add a key (error naming a.b=v if it exists); parents are created
//	++a.b=v  add or set
//	~a.b     delete (error if missing)
//	~a.b=v   delete only if the value is v (error otherwise)
//
// Values are YAML: lr=0.1 is a number, topk=[1,5] a list, name=mlp a string,
// x='1' the string "1", a= the empty string (as in Hydra). A numeric segment
// indexes a list: optimizer.param_schedulers.lr.schedulers.1.end_value=0.
// Hydra's sweeps (a=1,2), functions (choice(...)), interpolation (${...})
// and config groups (a/b=c) are rejected with a message saying so.
//
// YAML anchors, aliases and merge keys (<<) work; a file holds one document.
// Plain scalars like 1e-4 are numbers (YAML 1.2), as JSON configs expect.
//
// # Accepted keys
//
// Top level: name (the run's name, used for its output folder: letters,
// digits, '.', '_', '-'; default "classification_task", ClassyVision's task
// name), num_epochs (required, >= 1), test_phase_period (default 1),
// simulated_global_batchsize (0 = off; a multiple of the train
// batchsize_per_replica), clip_grad_norm (0 = off), loss, dataset, model,
// optimizer, meters, amp_args (only null: mixed precision is not supported
// on CPU), batch_norm_sync_mode (disabled, or pytorch for BatchNorm
// statistics over all ranks; also accepted as
// distributed.batch_norm_sync_mode, where ClassyVision puts it).
//
//   - loss: {name: CrossEntropyLoss | cross_entropy} → "cross_entropy".
//   - dataset: {train: D, test: D (optional)}; D has name (mnist | synthetic |
//     synthetic_image), batchsize_per_replica (required), use_shuffle
//     (default true for train, false for test), use_augmentation (only
//     false), num_workers (1: batches prepared ahead on that many
//     goroutines; 0: on the training goroutine), num_samples, transforms (a list of mappings, kept raw; the
//     task builder rejects transforms it cannot run), and per name: mnist: root, num_samples (0 = all);
//     synthetic (Cohort's, 1 x crop x crop samples): num_samples (1024),
//     num_classes (10), crop_size (28), class_ratio (0), seed (0);
//     synthetic_image (ClassyVision's, 3 x crop x crop images, binary):
//     num_samples and crop_size (required), num_classes (2), class_ratio
//     (0.5), seed (0). class_ratio > 0 makes a dataset binary. Keys of
//     another dataset kind are unknown keys.
//   - model: {name: mlp, input_dim, output_dim, hidden_dims (default []),
//     dropout (0), first_dropout (false), use_batchnorm (false),
//     first_batchnorm (false; needs use_batchnorm)}: ClassyVision's MLP
//     keys. input_dim and output_dim may be left out (0: taken from the
//     dataset); given, they are checked against it.
//     {name: lenet, output_dim}: LeNet-5 on 1×28×28 images.
//     {name: resnet, num_blocks (required), small_input (false),
//     basic_layer (false: bottlenecks), init_planes (64), reduction (4),
//     zero_init_bn_residuals (false), heads: [one fully_connected head
//     {unique_id, num_classes, fork_block (the last block), in_plane (its
//     width), zero_init_bias}]}: ClassyVision's ResNet keys; grouped
//     convolutions (base_width_and_cardinality) are rejected.
//   - optimizer: name sgd | adam | adamw (any case); the learning rate exactly
//     once, as optimizer.lr (a number, or a scheduler mapping as in older
//     ClassyVision configs) or as optimizer.param_schedulers.lr (a scheduler
//     mapping); weight_decay (default 0; 0.01 for adamw, as in ClassyVision);
//     sgd: momentum (0), nesterov (false); adam/adamw: betas ([0.9, 0.999]),
//     eps (1e-8). optimizer.num_epochs, which older ClassyVision configs
//     carry, is accepted and replaced by the task's num_epochs, as
//     ClassyVision does.
//   - schedulers (fvcore / ClassyVision param schedulers): constant {value},
//     step {values}, multistep {values, milestones (default: evenly
//     spaced, as fvcore)}, cosine and linear {start_value, end_value},
//     composite {schedulers, lengths (sum 1 ± 1e-6), interval_scaling
//     (rescaled | fixed, default rescaled)}. Each may carry update_interval
//     (step | epoch); the default is ClassyVision's: epoch for constant, step
//     and multistep, step for cosine, linear and composite. num_epochs in a
//     scheduler is set to the task's num_epochs, as ClassyVision does.
//   - meters: opt-in; {accuracy: {topk: [1, 5]}} (topk default [1]; each k
//     at most model.output_dim, or the train classes when that is unset).
//     The loss meter is always on and takes no config.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Config is a fully resolved task config.
type Config struct {
	Name                     string // "classification_task"
	NumEpochs                int
	TestPhasePeriod          int
	SimulatedGlobalBatchsize int                            // 0 = off
	ClipGradNorm             float64                        // 0 = off
	Dataset                  struct{ Train, Test *Dataset } // Test may be nil
	Model                    Model
	Loss                     Loss
	Optimizer                Optimizer
	Meters                   Meters
	// BatchNormSync combines BatchNorm statistics over all ranks in
	// training (batch_norm_sync_mode: pytorch, PyTorch's SyncBatchNorm).
	BatchNormSync bool
}

// Dataset is one phase's data.
type Dataset struct {
	Name                string // "mnist" | "synthetic" | "synthetic_image"
	Root                string // mnist: directory with the IDX .gz files; "" = default cache (resolved by the caller)
	BatchsizePerReplica int
	UseShuffle          bool
	NumSamples          int // 0 = whole dataset
	NumClasses          int // synthetic*
	CropSize            int // synthetic*
	ClassRatio          float64
	Seed                int
	// Transforms are ClassyVision transform configs, kept as given (nil when
	// none): values are nil, bool, int, float64, string, []any and
	// map[string]any. The task builder rejects, by name, those it cannot run.
	Transforms []map[string]any
	// NumWorkers is how many goroutines prepare batches ahead of the step
	// (ClassyVision's num_workers; 0 = on the training goroutine).
	NumWorkers int
}

// Model is the network.
type Model struct {
	Name string // "mlp" | "lenet" | "resnet"
	// mlp (ClassyVision's MLP keys); OutputDim also sizes lenet's head and
	// is the head's num_classes for resnet.
	InputDim       int
	OutputDim      int
	HiddenDims     []int // nil when none
	Dropout        float64
	FirstDropout   bool
	UseBatchnorm   bool // BatchNorm1d after each hidden Linear
	FirstBatchnorm bool // BatchNorm1d on the input too (needs UseBatchnorm)
	// resnet (ClassyVision's ResNeXt keys, cardinality 1).
	NumBlocks           []int // blocks per stage
	SmallInput          bool  // 3×3 stride-1 stem without max pool (CIFAR/MNIST sizes)
	ZeroInitBNResiduals bool  // each block's last BatchNorm starts with weight 0
	BasicLayer          bool  // basic blocks (two 3×3) instead of bottlenecks
	InitPlanes          int   // the stem's width (64)
	Reduction           int   // a stage's width over its bottleneck width (4)
	Head                Head
}

// Head is a ResNet's fully connected head.
type Head struct {
	UniqueID     string
	NumClasses   int
	ForkBlock    string // the last block, "block<stage>-<index>"
	InPlane      int    // the last block's width
	ZeroInitBias bool
}

// ResNetWidth is the channel count of the last stage of a resnet model:
// init_planes × reduction × 2^(stages−1), as in ClassyVision.
func (m Model) ResNetWidth() int {
	return m.InitPlanes * m.Reduction << (len(m.NumBlocks) - 1)
}

// Loss is the training criterion.
type Loss struct{ Name string } // "cross_entropy"

// Optimizer is the optimizer and its learning-rate schedule.
type Optimizer struct {
	Name        string   // "sgd" | "adam" | "adamw"
	LR          Schedule // a constant schedule when a plain number was given
	Momentum    float64  // sgd
	Nesterov    bool     // sgd
	WeightDecay float64
	Betas       [2]float64 // adam, adamw
	Eps         float64    // adam, adamw
}

// Schedule is a ClassyVision (fvcore) parameter scheduler. Which fields
// matter depends on Name:
//
//	constant   Value
//	step       Values
//	multistep  Values, Milestones (len(Values)-1 epochs, filled in when not given)
//	cosine     StartValue, EndValue
//	linear     StartValue, EndValue
//	composite  Schedulers, Lengths, IntervalScaling (one per scheduler)
//
// NumEpochs is the task's num_epochs (fvcore's num_updates) in every
// schedule, nested ones included. UpdateInterval is "step" or "epoch".
type Schedule struct {
	Name            string
	Value           float64
	StartValue      float64
	EndValue        float64
	Values          []float64
	Milestones      []int
	NumEpochs       int
	Schedulers      []Schedule
	Lengths         []float64
	IntervalScaling []string
	UpdateInterval  string
}

// Meters are the opt-in meters (the loss meter is always on).
type Meters struct{ Accuracy *Accuracy }

// Accuracy is the top-k accuracy meter.
type Accuracy struct{ TopK []int }

// Load reads the config files in order, deep-merges them, applies the
// overrides in order and decodes the result strictly. Every error wraps
// ErrInvalid.
func Load(files []string, overrides []string) (*Config, error) {
	root := newMap(pos{})
	e := &Error{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			why := err.Error()
			var pe *fs.PathError
			if errors.As(err, &pe) {
				why = pe.Err.Error()
			}
			e.Problems = append(e.Problems, Problem{Where: f, Msg: fmt.Sprintf("cannot read config file: %s", why)})
			e.causes = append(e.causes, err)
			continue
		}
		t, p := parseFile(f, data)
		if p != nil {
			e.Problems = append(e.Problems, *p)
			continue
		}
		if t != nil {
			mergeInto(root, t)
		}
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	return finish(root, overrides)
}

// Parse is Load for one config held in memory (a config stored in a
// checkpoint, say); name stands for the file in messages.
func Parse(name string, data []byte, overrides []string) (*Config, error) {
	root := newMap(pos{})
	t, p := parseFile(name, data)
	if p != nil {
		return nil, &Error{Problems: []Problem{*p}}
	}
	if t != nil {
		mergeInto(root, t)
	}
	return finish(root, overrides)
}

// maxFileSize bounds a config file. Task configs are a few KiB; the YAML
// parser slows down quadratically on huge mappings, so a file far past this
// is refused rather than parsed for seconds.
const maxFileSize = 256 << 10

// parseFile parses one config file into a tree (nil when empty).
func parseFile(name string, data []byte) (*node, *Problem) {
	if len(data) > maxFileSize {
		return nil, &Problem{Where: name, Msg: fmt.Sprintf("config file is %d bytes, more than the %d a task config may have; is this the right file?", len(data), maxFileSize)}
	}
	t, err := parseYAML(data, pos{file: name})
	if err != nil {
		var se *syntaxError
		where := pos{file: name}
		msg := err.Error()
		if errors.As(err, &se) {
			where.line = se.line
			msg = se.msg
		}
		return nil, &Problem{Where: where.String(), Msg: "YAML syntax error: " + msg}
	}
	if t != nil && t.kind != mapKind {
		return nil, &Problem{Where: t.pos.String(), Msg: fmt.Sprintf("a config file must be a mapping (key: value lines or a JSON object), not %s", t.describe())}
	}
	return t, nil
}

func finish(root *node, overrides []string) (*Config, error) {
	e := &Error{}
	for _, text := range overrides {
		o, p := parseOverride(text)
		if p == nil {
			p = o.apply(root)
		}
		if p != nil {
			e.Problems = append(e.Problems, *p)
		}
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	c, probs := decode(root)
	if len(probs) > 0 {
		return nil, &Error{Problems: probs}
	}
	return c, nil
}
