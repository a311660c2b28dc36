package config

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// decoder turns the merged tree into a Config, collecting every problem.
type decoder struct {
	probs     []Problem
	at        map[string]pos // config path → where its value was written
	numEpochs int            // the task's num_epochs once known to be valid, else 0
}

// maxProblems caps how many problems one config reports.
const maxProblems = 100

func (d *decoder) add(where pos, key, format string, args ...any) {
	switch {
	case len(d.probs) < maxProblems:
		d.probs = append(d.probs, Problem{Where: where.String(), Key: key, Msg: fmt.Sprintf(format, args...)})
	case len(d.probs) == maxProblems:
		d.probs = append(d.probs, Problem{Msg: "too many problems; stopping here"})
	}
}

func (d *decoder) full() bool { return len(d.probs) > maxProblems }

// obj reads one mapping of the config and remembers which keys it knows.
type obj struct {
	d     *decoder
	path  string // dotted path of the mapping; "" at the top
	where pos    // where the mapping's key was written (for missing keys)
	n     *node  // nil when absent, null, or not a mapping
	known []string
}

// object opens the mapping n found at path. ok is false when n is there but
// is not a mapping (reported).
func (d *decoder) object(path string, where pos, n *node) (*obj, bool) {
	o := &obj{d: d, path: path, where: where}
	if n == nil || n.kind == nullKind {
		return o, true
	}
	if n.kind != mapKind {
		d.add(n.pos, path, "expected a mapping (key: value pairs), got %s", n.describe())
		return o, false
	}
	o.n = n
	return o, true
}

func (o *obj) key(k string) string {
	if o.path == "" {
		return k
	}
	return o.path + "." + k
}

// get returns k's entry, or nil when k is absent or null; k becomes a known
// key of this mapping.
func (o *obj) get(k string) *entry {
	if !slices.Contains(o.known, k) {
		o.known = append(o.known, k)
	}
	if o.n == nil {
		return nil
	}
	e := o.n.m.get(k)
	if e == nil || e.val.kind == nullKind {
		return nil
	}
	o.d.at[o.key(k)] = e.val.pos
	return e
}

func (o *obj) missing(k, hint string) {
	o.d.add(o.where, o.key(k), "required but not set; %s", hint)
}

// bad reports a problem with k's value.
func (o *obj) bad(k, format string, args ...any) {
	o.d.add(o.d.at[o.key(k)], o.key(k), format, args...)
}

// finish reports the keys of the mapping that nothing asked for. what names
// the mapping's kind in the message (`optimizer "adam"`), or is "".
func (o *obj) finish(what string) {
	if o.n == nil {
		return
	}
	for _, e := range o.n.m.entries {
		if o.d.full() {
			return
		}
		if slices.Contains(o.known, e.key) || e.val.kind == nullKind {
			continue // null means unset: a later layer may null out a key
		}
		msg := "unknown key"
		if what != "" {
			msg += " for " + what
		}
		if s := suggest(e.key, o.known); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			ks := slices.Clone(o.known)
			sort.Strings(ks)
			msg += "; known keys: " + strings.Join(ks, ", ")
		}
		o.d.add(e.keyPos, o.key(e.key), "%s", msg)
	}
}

// unnamed finishes a mapping whose name is missing or unknown: keys that
// some kind of the component takes are let through, the rest reported.
func (o *obj) unnamed(what string, allKeys []string) {
	for _, k := range allKeys {
		if !slices.Contains(o.known, k) {
			o.known = append(o.known, k)
		}
	}
	o.finish(what)
}

// The keys each component takes, whatever its name.
var (
	lossKeys      = []string{"name"}
	datasetKeys   = []string{"name", "batchsize_per_replica", "use_shuffle", "use_augmentation", "num_workers", "num_samples", "transforms", "root", "crop_size", "num_classes", "class_ratio", "seed"}
	modelKeys     = []string{"name", "input_dim", "output_dim", "hidden_dims", "dropout", "first_dropout", "use_batchnorm", "first_batchnorm", "num_blocks", "small_input", "zero_init_bn_residuals", "basic_layer", "init_planes", "reduction", "base_width_and_cardinality", "heads"}
	optimizerKeys = []string{"name", "lr", "param_schedulers", "weight_decay", "num_epochs", "momentum", "nesterov", "betas", "eps"}
	scheduleKeys  = []string{"name", "update_interval", "num_epochs", "value", "values", "milestones", "start_value", "end_value", "schedulers", "lengths", "interval_scaling"}
)

type state uint8

const (
	absent state = iota
	invalid
	valid
)

// maxInt bounds integers read from floats (2^53: exact in a float64).
const maxInt = 1 << 53

func (d *decoder) intVal(n *node, key string) (int, bool) {
	switch n.kind {
	case intKind:
		if n.i > maxInt || n.i < -maxInt {
			d.add(n.pos, key, "%d is out of range", n.i)
			return 0, false
		}
		return int(n.i), true
	case floatKind:
		switch {
		case math.IsNaN(n.f) || math.IsInf(n.f, 0):
			d.add(n.pos, key, "expected an integer, got %s", n.describe())
		case n.f != math.Trunc(n.f):
			d.add(n.pos, key, "expected an integer, got %s, which is not a whole number", formatFloat(n.f))
		case math.Abs(n.f) > maxInt:
			d.add(n.pos, key, "%s is out of range", formatFloat(n.f))
		default:
			return int(n.f), true
		}
		return 0, false
	}
	d.add(n.pos, key, "expected an integer, got %s%s", n.describe(), unquoteHint(n))
	return 0, false
}

func (d *decoder) floatVal(n *node, key string) (float64, bool) {
	if f, ok := n.number(); ok {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.add(n.pos, key, "expected a finite number, got %s", formatFloat(f))
			return 0, false
		}
		return f, true
	}
	d.add(n.pos, key, "expected a number, got %s%s", n.describe(), unquoteHint(n))
	return 0, false
}

func (d *decoder) boolVal(n *node, key string) (bool, bool) {
	if n.kind == boolKind {
		return n.b, true
	}
	hint := ""
	if n.kind == stringKind {
		switch strings.ToLower(n.s) {
		case "true", "yes", "on", "y":
			hint = "; write true without quotes"
		case "false", "no", "off", "n":
			hint = "; write false without quotes"
		}
	}
	d.add(n.pos, key, "expected true or false, got %s%s", n.describe(), hint)
	return false, false
}

func (d *decoder) stringVal(n *node, key string) (string, bool) {
	if n.kind == stringKind {
		return n.s, true
	}
	hint := ""
	if n.kind != listKind && n.kind != mapKind {
		hint = "; quote it if a string is meant"
	}
	d.add(n.pos, key, "expected a string, got %s%s", n.describe(), hint)
	return "", false
}

// unquoteHint helps with "32" given for 32.
func unquoteHint(n *node) string {
	if n.kind != stringKind {
		return ""
	}
	if _, err := strconv.ParseFloat(strings.TrimSpace(n.s), 64); err == nil {
		return "; write the number without quotes"
	}
	return ""
}

func (d *decoder) listVal(n *node, key, example string) ([]*node, bool) {
	if n.kind == listKind {
		return n.list, true
	}
	d.add(n.pos, key, "expected a list like %s, got %s", example, n.describe())
	return nil, false
}

func (o *obj) int(k string, dst *int) state {
	e := o.get(k)
	if e == nil {
		return absent
	}
	v, ok := o.d.intVal(e.val, o.key(k))
	if !ok {
		return invalid
	}
	*dst = v
	return valid
}

func (o *obj) float(k string, dst *float64) state {
	e := o.get(k)
	if e == nil {
		return absent
	}
	v, ok := o.d.floatVal(e.val, o.key(k))
	if !ok {
		return invalid
	}
	*dst = v
	return valid
}

func (o *obj) bool(k string, dst *bool) state {
	e := o.get(k)
	if e == nil {
		return absent
	}
	v, ok := o.d.boolVal(e.val, o.key(k))
	if !ok {
		return invalid
	}
	*dst = v
	return valid
}

func (o *obj) string(k string, dst *string) state {
	e := o.get(k)
	if e == nil {
		return absent
	}
	v, ok := o.d.stringVal(e.val, o.key(k))
	if !ok {
		return invalid
	}
	*dst = v
	return valid
}

func (o *obj) ints(k string, dst *[]int, example string) state {
	e := o.get(k)
	if e == nil {
		return absent
	}
	l, ok := o.d.listVal(e.val, o.key(k), example)
	if !ok {
		return invalid
	}
	var out []int
	st := valid
	for i, x := range l {
		v, ok := o.d.intVal(x, fmt.Sprintf("%s.%d", o.key(k), i))
		if !ok {
			st = invalid
		}
		out = append(out, v)
	}
	if st == valid {
		*dst = out
	}
	return st
}

func (o *obj) floats(k string, dst *[]float64, example string) state {
	e := o.get(k)
	if e == nil {
		return absent
	}
	l, ok := o.d.listVal(e.val, o.key(k), example)
	if !ok {
		return invalid
	}
	var out []float64
	st := valid
	for i, x := range l {
		v, ok := o.d.floatVal(x, fmt.Sprintf("%s.%d", o.key(k), i))
		if !ok {
			st = invalid
		}
		out = append(out, v)
	}
	if st == valid {
		*dst = out
	}
	return st
}

// name reads a component name and maps it through aliases (spelling →
// Cohort name). ok is false when the name is missing (reported), malformed
// or unknown (reported, listing the known ones).
func (o *obj) name(what string, aliases map[string]string, known []string, foldCase bool) (string, bool) {
	var s string
	switch o.string("name", &s) {
	case absent:
		o.missing("name", fmt.Sprintf("give the %s's name, one of: %s", what, strings.Join(known, ", ")))
		return "", false
	case invalid:
		return "", false
	}
	look := s
	if foldCase {
		look = strings.ToLower(s)
	}
	if n, ok := aliases[look]; ok {
		return n, true
	}
	msg := fmt.Sprintf("unknown %s %s; known: %s", what, quoteShort(s), strings.Join(known, ", "))
	var cands []string
	for k := range aliases {
		cands = append(cands, k)
	}
	sort.Strings(cands)
	if g := suggest(s, cands); g != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", g)
	}
	o.bad("name", "%s", msg)
	return "", false
}

// ---- the task config ----

var (
	lossNames      = map[string]string{"CrossEntropyLoss": "cross_entropy", "cross_entropy": "cross_entropy"}
	lossKnown      = []string{"CrossEntropyLoss", "cross_entropy"}
	optimizerNames = map[string]string{"sgd": "sgd", "adam": "adam", "adamw": "adamw"}
	optimizerKnown = []string{"sgd", "adam", "adamw"}
	modelNames     = map[string]string{"mlp": "mlp", "lenet": "lenet", "resnet": "resnet"}
	datasetNames   = map[string]string{"mnist": "mnist", "synthetic": "synthetic", "synthetic_image": "synthetic_image"}
	datasetKnown   = []string{"mnist", "synthetic", "synthetic_image"}
	scheduleNames  = map[string]string{"constant": "constant", "step": "step", "multistep": "multistep", "cosine": "cosine", "linear": "linear", "composite": "composite"}
	scheduleKnown  = []string{"constant", "step", "multistep", "cosine", "linear", "composite"}
	// ClassyVision's default update intervals.
	defaultInterval = map[string]string{"constant": "epoch", "step": "epoch", "multistep": "epoch", "cosine": "step", "linear": "step", "composite": "step"}
)

// runName is what the task name may be: it names the run's output folder.
var runName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$`)

// MNIST's sample shape and class count, for the model checks.
const (
	mnistFeatures = 28 * 28
	mnistClasses  = 10
)

// features is the number of input values per sample of ds, as the task
// builds it (synthetic: 1 channel, synthetic_image: 3, crop_size square).
func features(ds *Dataset) int {
	switch ds.Name {
	case "mnist":
		return mnistFeatures
	case "synthetic_image":
		return 3 * ds.CropSize * ds.CropSize
	default:
		return ds.CropSize * ds.CropSize
	}
}

// classes is the number of classes of ds (class_ratio > 0 makes a
// synthetic dataset binary, as ClassyVision's synthetic_image is).
func classes(ds *Dataset) int {
	switch {
	case ds.Name == "mnist":
		return mnistClasses
	case ds.ClassRatio > 0:
		return 2
	default:
		return ds.NumClasses
	}
}

func decode(root *node) (*Config, []Problem) {
	d := &decoder{at: map[string]pos{}}
	c := &Config{Name: "classification_task", TestPhasePeriod: 1}
	// Name defaults to ClassyVision's task name; Cohort uses it for the run
	// folder, so any folder-safe name is accepted.
	o, _ := d.object("", pos{}, root)

	if o.string("name", &c.Name) == valid && !runName.MatchString(c.Name) {
		o.bad("name", "%s cannot name a run folder; use letters, digits, '.', '_' and '-' (not starting with '.'), e.g. mnist_mlp", quoteShort(c.Name))
	}
	switch o.int("num_epochs", &c.NumEpochs) {
	case absent:
		o.missing("num_epochs", "add num_epochs: N (N >= 1) to the config, or the override +num_epochs=N")
	case valid:
		if c.NumEpochs < 1 {
			o.bad("num_epochs", "must be at least 1, got %d", c.NumEpochs)
		} else {
			d.numEpochs = c.NumEpochs
		}
	}
	if o.int("test_phase_period", &c.TestPhasePeriod) == valid && c.TestPhasePeriod < 1 {
		o.bad("test_phase_period", "must be at least 1 (test every N epochs), got %d", c.TestPhasePeriod)
	}
	if o.int("simulated_global_batchsize", &c.SimulatedGlobalBatchsize) == valid && c.SimulatedGlobalBatchsize < 0 {
		o.bad("simulated_global_batchsize", "must be 0 (off) or positive, got %d", c.SimulatedGlobalBatchsize)
	}
	if o.float("clip_grad_norm", &c.ClipGradNorm) == valid && c.ClipGradNorm < 0 {
		o.bad("clip_grad_norm", "must be 0 (off) or positive, got %s", formatFloat(c.ClipGradNorm))
	}
	if o.get("amp_args") != nil {
		o.bad("amp_args", "mixed precision not supported on CPU; remove amp_args or set it to null")
	}
	d.bnSync(o, c)
	if e := o.get("distributed"); e != nil {
		dist, ok := d.object("distributed", e.keyPos, e.val)
		if ok {
			d.bnSync(dist, c)
			dist.finish("distributed (Cohort reads only batch_norm_sync_mode here)")
		}
	}

	if e := o.get("loss"); e == nil {
		o.missing("loss", "add loss: {name: CrossEntropyLoss}")
	} else if lo, ok := d.object("loss", e.keyPos, e.val); ok {
		if lo.n == nil {
			o.missing("loss", "add loss: {name: CrossEntropyLoss}")
		} else if n, ok := lo.name("loss", lossNames, lossKnown, false); ok {
			c.Loss.Name = n
			lo.finish(fmt.Sprintf("loss %q", n))
		} else {
			lo.unnamed("loss", lossKeys)
		}
	}

	if e := o.get("dataset"); e == nil {
		o.missing("dataset", "add dataset: {train: {...}, test: {...}}")
	} else if do, ok := d.object("dataset", e.keyPos, e.val); ok {
		if te := do.get("train"); te == nil {
			do.missing("train", "add dataset.train: {name: ..., batchsize_per_replica: N, ...}")
		} else {
			c.Dataset.Train = d.dataset(do, te, true)
		}
		if te := do.get("test"); te != nil {
			c.Dataset.Test = d.dataset(do, te, false)
		}
		do.finish("dataset (it has train and test)")
	}

	if e := o.get("model"); e == nil {
		o.missing("model", "add model: {name: mlp, hidden_dims: [...]}")
	} else {
		d.model(e, &c.Model)
	}

	if e := o.get("optimizer"); e == nil {
		o.missing("optimizer", "add optimizer: {name: sgd, lr: 0.1}")
	} else {
		d.optimizer(e, &c.Optimizer)
	}

	if e := o.get("meters"); e != nil {
		if mo, ok := d.object("meters", e.keyPos, e.val); ok {
			if ae := mo.get("accuracy"); ae != nil {
				if ao, ok := d.object("meters.accuracy", ae.keyPos, ae.val); ok {
					acc := &Accuracy{TopK: []int{1}}
					if ao.ints("topk", &acc.TopK, "[1, 5]") == valid {
						seen := map[int]bool{}
						for i, k := range acc.TopK {
							switch {
							case k < 1:
								d.add(d.at["meters.accuracy.topk"], fmt.Sprintf("meters.accuracy.topk.%d", i), "must be at least 1, got %d", k)
							case seen[k]:
								d.add(d.at["meters.accuracy.topk"], fmt.Sprintf("meters.accuracy.topk.%d", i), "%d is listed twice", k)
							}
							seen[k] = true
						}
						if len(acc.TopK) == 0 {
							ao.bad("topk", "must list at least one k, e.g. [1, 5]")
						}
					}
					ao.finish("meters.accuracy")
					c.Meters.Accuracy = acc
				}
			}
			mo.finish("meters (the loss meter is always on; opt-in meters: accuracy)")
		}
	}
	o.finish("the task")

	if len(d.probs) == 0 {
		d.crossCheck(c)
	}
	if len(d.probs) > 0 {
		return nil, d.probs
	}
	return c, nil
}

func (d *decoder) bnSync(o *obj, c *Config) {
	var s string
	if o.string("batch_norm_sync_mode", &s) != valid {
		return
	}
	switch strings.ToLower(s) {
	case "disabled":
		c.BatchNormSync = false
	case "pytorch":
		c.BatchNormSync = true
	case "apex":
		o.bad("batch_norm_sync_mode", "%s is NVIDIA Apex's implementation; Cohort's synchronised BatchNorm is selected with pytorch", quoteShort(s))
	default:
		o.bad("batch_norm_sync_mode", "unknown mode %s; use disabled or pytorch", quoteShort(s))
	}
}

// crossCheck runs the checks that span sections (only on an otherwise
// valid config, so that they do not pile onto earlier problems).
func (d *decoder) crossCheck(c *Config) {
	train := c.Dataset.Train
	if c.SimulatedGlobalBatchsize > 0 && c.SimulatedGlobalBatchsize%train.BatchsizePerReplica != 0 {
		d.add(d.at["simulated_global_batchsize"], "simulated_global_batchsize",
			"%d is not a multiple of dataset.train.batchsize_per_replica (%d); it must be a multiple of the global batch size",
			c.SimulatedGlobalBatchsize, train.BatchsizePerReplica)
	}
	if test := c.Dataset.Test; test != nil && c.Model.InputDim == 0 && features(test) != features(train) {
		d.add(d.at["dataset.test.name"], "dataset.test",
			"samples have %d values but dataset.train's have %d; the model takes one input size", features(test), features(train))
	}
	for _, ph := range []struct {
		name string
		ds   *Dataset
	}{{"train", train}, {"test", c.Dataset.Test}} {
		if ph.ds == nil {
			continue
		}
		if in := c.Model.InputDim; in != 0 && in != features(ph.ds) {
			shape := "28x28 images"
			switch ph.ds.Name {
			case "synthetic":
				shape = fmt.Sprintf("1x%dx%d samples (crop_size %d)", ph.ds.CropSize, ph.ds.CropSize, ph.ds.CropSize)
			case "synthetic_image":
				shape = fmt.Sprintf("3x%dx%d images (crop_size %d)", ph.ds.CropSize, ph.ds.CropSize, ph.ds.CropSize)
			}
			d.add(d.at["model.input_dim"], "model.input_dim", "is %d, but dataset.%s (%s) has %s, %d values each; set input_dim: %d or leave it out",
				in, ph.name, ph.ds.Name, shape, features(ph.ds), features(ph.ds))
		}
		if out := c.Model.OutputDim; out != 0 && out < classes(ph.ds) {
			d.add(d.at["model.output_dim"], "model.output_dim", "is %d, but dataset.%s has %d classes; set output_dim: %d or leave it out",
				out, ph.name, classes(ph.ds), classes(ph.ds))
		}
	}
	if acc := c.Meters.Accuracy; acc != nil {
		for i, k := range acc.TopK {
			// Top-k ranks the model's outputs (ClassyVision's meter), which
			// are the train classes unless output_dim says more.
			if out, what := c.Model.OutputDim, "model.output_dim"; out == 0 {
				if n := classes(train); k > n {
					d.add(d.at["meters.accuracy.topk"], fmt.Sprintf("meters.accuracy.topk.%d", i),
						"top-%d accuracy needs at least %d classes, but dataset.train has %d (and model.output_dim is not set)", k, k, n)
				}
			} else if k > out {
				d.add(d.at["meters.accuracy.topk"], fmt.Sprintf("meters.accuracy.topk.%d", i),
					"top-%d accuracy needs at least %d outputs, but %s is %d", k, k, what, out)
			}
		}
	}
}

func (d *decoder) dataset(parent *obj, e *entry, train bool) *Dataset {
	path := parent.key(e.key)
	o, ok := d.object(path, e.keyPos, e.val)
	if !ok {
		return nil
	}
	name, ok := o.name("dataset", datasetNames, datasetKnown, false)
	if !ok {
		o.unnamed("a dataset", datasetKeys)
		return nil
	}
	ds := &Dataset{Name: name, UseShuffle: train, NumWorkers: 1}
	if o.int("num_workers", &ds.NumWorkers) == valid && ds.NumWorkers < 0 {
		o.bad("num_workers", "must be 0 (load on the training goroutine) or more, got %d", ds.NumWorkers)
	}
	switch o.int("batchsize_per_replica", &ds.BatchsizePerReplica) {
	case absent:
		o.missing("batchsize_per_replica", "add batchsize_per_replica: N (the batch size on each replica)")
	case valid:
		if ds.BatchsizePerReplica < 1 {
			o.bad("batchsize_per_replica", "must be at least 1, got %d", ds.BatchsizePerReplica)
		}
	}
	o.bool("use_shuffle", &ds.UseShuffle)
	var augment bool
	if o.bool("use_augmentation", &augment) == valid && augment {
		o.bad("use_augmentation", "is not supported; list the augmentations under transforms (RandomCrop, RandomHorizontalFlip) and set use_augmentation: false")
	}
	synthetic := name == "synthetic" || name == "synthetic_image"
	if name == "synthetic" {
		// Cohort's own synthetic set: what the task builder assumes.
		ds.NumSamples, ds.NumClasses, ds.CropSize = 1024, 10, 28
	}
	if name == "synthetic_image" {
		// ClassyVision's: binary, class 1 with probability class_ratio.
		ds.NumClasses, ds.ClassRatio = 2, 0.5
	}
	switch o.int("num_samples", &ds.NumSamples) {
	case absent:
		if name == "synthetic_image" {
			o.missing("num_samples", "synthetic_image needs num_samples: N")
		}
	case valid:
		if ds.NumSamples < 0 || (synthetic && ds.NumSamples == 0) {
			if synthetic {
				o.bad("num_samples", "must be at least 1, got %d", ds.NumSamples)
			} else {
				o.bad("num_samples", "must be 0 (the whole dataset) or positive, got %d", ds.NumSamples)
			}
		}
	}
	if te := o.get("transforms"); te != nil {
		if l, ok := d.listVal(te.val, o.key("transforms"), `[{name: ToTensor}]`); ok {
			for i, x := range l {
				key := fmt.Sprintf("%s.%d", o.key("transforms"), i)
				if x.kind != mapKind {
					d.add(x.pos, key, "expected a transform mapping like {name: ToTensor}, got %s", x.describe())
					continue
				}
				if bad := nonFinite(x); bad != nil {
					d.add(bad.pos, key, "transform values must be finite numbers, got %s", formatFloat(bad.f))
					continue
				}
				ds.Transforms = append(ds.Transforms, toAny(x).(map[string]any))
			}
		}
	}
	switch name {
	case "mnist":
		o.string("root", &ds.Root)
	default:
		switch o.int("crop_size", &ds.CropSize) {
		case absent:
			if name == "synthetic_image" {
				o.missing("crop_size", "synthetic_image needs crop_size: N (the image side)")
			}
		case valid:
			if ds.CropSize < 1 {
				o.bad("crop_size", "must be at least 1, got %d", ds.CropSize)
			}
		}
		if o.int("num_classes", &ds.NumClasses) == valid && ds.NumClasses < 2 {
			o.bad("num_classes", "must be at least 2, got %d", ds.NumClasses)
		}
		if o.float("class_ratio", &ds.ClassRatio) == valid && (ds.ClassRatio < 0 || ds.ClassRatio > 1) {
			o.bad("class_ratio", "must be between 0 and 1 (0: num_classes classes, uniformly; above 0: two classes, class 1 with that probability), got %s", formatFloat(ds.ClassRatio))
		}
		if o.int("seed", &ds.Seed) == valid && ds.Seed < 0 {
			o.bad("seed", "must be 0 or positive, got %d", ds.Seed)
		}
	}
	o.finish(fmt.Sprintf("dataset %q", name))
	return ds
}

// nonFinite finds a NaN or infinity in n (they have no JSON form).
func nonFinite(n *node) *node {
	switch n.kind {
	case floatKind:
		if math.IsNaN(n.f) || math.IsInf(n.f, 0) {
			return n
		}
	case listKind:
		for _, x := range n.list {
			if b := nonFinite(x); b != nil {
				return b
			}
		}
	case mapKind:
		for _, e := range n.m.entries {
			if b := nonFinite(e.val); b != nil {
				return b
			}
		}
	}
	return nil
}

func (d *decoder) optimizer(e *entry, opt *Optimizer) {
	o, ok := d.object("optimizer", e.keyPos, e.val)
	if !ok {
		return
	}
	name, ok := o.name("optimizer", optimizerNames, optimizerKnown, true)
	if !ok {
		o.unnamed("an optimizer", optimizerKeys)
		return
	}
	opt.Name = name

	// The learning rate: exactly one of optimizer.lr (a number or, in older
	// ClassyVision configs, a scheduler mapping) and
	// optimizer.param_schedulers.lr.
	lrE := o.get("lr")
	var psLR *entry
	if pe := o.get("param_schedulers"); pe != nil {
		if po, ok := d.object("optimizer.param_schedulers", pe.keyPos, pe.val); ok {
			psLR = po.get("lr")
			po.finish("optimizer.param_schedulers (Cohort schedules only lr)")
		}
	}
	switch {
	case lrE != nil && psLR != nil:
		d.add(psLR.keyPos, "optimizer.param_schedulers.lr",
			"the learning rate is given twice, here and as optimizer.lr (at %s); keep one (the override ~optimizer.lr or ~optimizer.param_schedulers.lr removes one)",
			lrE.keyPos)
	case lrE == nil && psLR == nil:
		o.missing("lr", "set optimizer.lr: 0.1, or a scheduler in optimizer.param_schedulers.lr")
	case lrE != nil:
		if lrE.val.kind == mapKind {
			opt.LR, _ = d.schedule("optimizer.lr", lrE)
		} else if f, ok := lrE.val.number(); ok {
			if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
				o.bad("lr", "must be a finite number >= 0, got %s", formatFloat(f))
			}
			opt.LR = Schedule{Name: "constant", Value: f, NumEpochs: d.numEpochs, UpdateInterval: defaultInterval["constant"]}
		} else {
			o.bad("lr", "expected a number or a scheduler mapping like {name: cosine, start_value: 0.1, end_value: 0}, got %s%s", lrE.val.describe(), unquoteHint(lrE.val))
		}
	default:
		if psLR.val.kind != mapKind {
			d.add(psLR.val.pos, "optimizer.param_schedulers.lr", "expected a scheduler mapping like {name: constant, value: 0.1}, got %s (a plain number goes in optimizer.lr)", psLR.val.describe())
		} else {
			opt.LR, _ = d.schedule("optimizer.param_schedulers.lr", psLR)
		}
	}

	if name == "adamw" {
		opt.WeightDecay = 0.01 // ClassyVision's (and PyTorch's) AdamW default
	}
	if o.float("weight_decay", &opt.WeightDecay) == valid && opt.WeightDecay < 0 {
		o.bad("weight_decay", "must be 0 or positive, got %s", formatFloat(opt.WeightDecay))
	}
	var ignored int // older ClassyVision configs carry num_epochs; the task's wins
	if o.int("num_epochs", &ignored) == valid && ignored < 1 {
		o.bad("num_epochs", "must be at least 1, got %d (it is replaced by the task's num_epochs anyway; you can remove it)", ignored)
	}
	switch name {
	case "sgd":
		if o.float("momentum", &opt.Momentum) == valid && (opt.Momentum < 0 || opt.Momentum >= 1) {
			o.bad("momentum", "must be in [0, 1), got %s", formatFloat(opt.Momentum))
		}
		if o.bool("nesterov", &opt.Nesterov) == valid && opt.Nesterov && opt.Momentum <= 0 {
			o.bad("nesterov", "Nesterov momentum needs momentum > 0; set optimizer.momentum (e.g. 0.9) or nesterov: false")
		}
	default:
		opt.Betas, opt.Eps = [2]float64{0.9, 0.999}, 1e-8
		var betas []float64
		if o.floats("betas", &betas, "[0.9, 0.999]") == valid {
			if len(betas) != 2 {
				o.bad("betas", "must be two numbers [beta1, beta2], got %d", len(betas))
			} else {
				for i, b := range betas {
					if b < 0 || b >= 1 {
						d.add(d.at["optimizer.betas"], fmt.Sprintf("optimizer.betas.%d", i), "must be in [0, 1), got %s", formatFloat(b))
					}
				}
				opt.Betas = [2]float64{betas[0], betas[1]}
			}
		}
		if o.float("eps", &opt.Eps) == valid && opt.Eps <= 0 {
			o.bad("eps", "must be positive, got %s", formatFloat(opt.Eps))
		}
	}
	o.finish(fmt.Sprintf("optimizer %q", name))
}

// schedule decodes the scheduler mapping in e, found at path.
func (d *decoder) schedule(path string, e *entry) (Schedule, bool) {
	before := len(d.probs)
	s := Schedule{NumEpochs: d.numEpochs}
	o, ok := d.object(path, e.keyPos, e.val)
	if !ok {
		return s, false
	}
	name, ok := o.name("scheduler", scheduleNames, scheduleKnown, false)
	if !ok {
		o.unnamed("a scheduler", scheduleKeys)
		return s, false
	}
	s.Name = name
	s.UpdateInterval = defaultInterval[name]
	var ui string
	if o.string("update_interval", &ui) == valid {
		switch strings.ToLower(ui) {
		case "step", "epoch":
			s.UpdateInterval = strings.ToLower(ui)
		default:
			o.bad("update_interval", "must be step or epoch, got %s", quoteShort(ui))
		}
	}
	var ignored int // ClassyVision sets num_epochs from the task
	if o.int("num_epochs", &ignored) == valid && ignored < 1 {
		o.bad("num_epochs", "must be at least 1, got %d (it is replaced by the task's num_epochs anyway; you can remove it)", ignored)
	}
	value := func(k string, dst *float64) {
		switch o.float(k, dst) {
		case absent:
			o.missing(k, fmt.Sprintf("a %s scheduler needs %s", name, k))
		case valid:
			if *dst < 0 {
				o.bad(k, "a learning rate must be >= 0, got %s", formatFloat(*dst))
			}
		}
	}
	values := func() {
		switch o.floats("values", &s.Values, "[0.1, 0.01]") {
		case absent:
			o.missing("values", fmt.Sprintf("a %s scheduler needs values: [v1, v2, ...]", name))
		case valid:
			if len(s.Values) == 0 {
				o.bad("values", "must list at least one value")
			}
			for i, v := range s.Values {
				if v < 0 {
					d.add(d.at[o.key("values")], fmt.Sprintf("%s.%d", o.key("values"), i), "a learning rate must be >= 0, got %s", formatFloat(v))
				}
			}
		}
	}
	switch name {
	case "constant":
		value("value", &s.Value)
	case "step":
		values()
	case "multistep":
		values()
		st := o.ints("milestones", &s.Milestones, "[30, 60]")
		if len(d.probs) == before && d.numEpochs > 0 {
			d.milestones(o, &s, st == absent)
		}
	case "cosine", "linear":
		value("start_value", &s.StartValue)
		value("end_value", &s.EndValue)
	case "composite":
		d.composite(o, &s)
	}
	o.finish(fmt.Sprintf("scheduler %q", name))
	return s, len(d.probs) == before
}

// milestones checks (or, when not given, fills in) a multistep schedule's
// milestones the way fvcore's MultiStepParamScheduler does, with the task's
// num_epochs as num_updates.
func (d *decoder) milestones(o *obj, s *Schedule, fill bool) {
	n := d.numEpochs
	if n < len(s.Values) {
		o.bad("values", "lists %d values but the task has only num_epochs %d; a multistep scheduler needs num_epochs >= len(values)", len(s.Values), n)
		return
	}
	if fill {
		width := (n + len(s.Values) - 1) / len(s.Values)
		s.Milestones = nil
		for i := 1; i < len(s.Values); i++ {
			s.Milestones = append(s.Milestones, width*i)
		}
		return
	}
	if len(s.Milestones) != len(s.Values)-1 {
		o.bad("milestones", "needs %d milestones (one fewer than values), got %d", len(s.Values)-1, len(s.Milestones))
		return
	}
	prev := 0
	for _, m := range s.Milestones {
		if m <= prev {
			o.bad("milestones", "must be strictly increasing epochs above 0, got %v", s.Milestones)
			return
		}
		if m >= n {
			o.bad("milestones", "milestone %d is not below num_epochs (%d)", m, n)
			return
		}
		prev = m
	}
	if len(s.Milestones) == 0 {
		s.Milestones = nil
	}
}

func (d *decoder) composite(o *obj, s *Schedule) {
	se := o.get("schedulers")
	if se == nil {
		o.missing("schedulers", "a composite scheduler needs schedulers: [{name: ...}, ...]")
	} else if l, ok := d.listVal(se.val, o.key("schedulers"), "[{name: linear, ...}, {name: cosine, ...}]"); ok {
		if len(l) == 0 {
			o.bad("schedulers", "must list at least one scheduler")
		}
		for i, x := range l {
			sub, _ := d.schedule(fmt.Sprintf("%s.%d", o.key("schedulers"), i), &entry{key: strconv.Itoa(i), keyPos: x.pos, val: x})
			s.Schedulers = append(s.Schedulers, sub)
		}
	}
	switch o.floats("lengths", &s.Lengths, "[0.1, 0.9]") {
	case absent:
		o.missing("lengths", "a composite scheduler needs lengths: [...], the fraction of training each scheduler runs, summing to 1")
	case valid:
		sum := 0.0
		for i, l := range s.Lengths {
			if l < 0 {
				d.add(d.at[o.key("lengths")], fmt.Sprintf("%s.%d", o.key("lengths"), i), "must be >= 0, got %s", formatFloat(l))
			}
			sum += l
		}
		if math.Abs(sum-1) > 1e-6 {
			o.bad("lengths", "must sum to 1, got %s", formatFloat(sum))
		}
		if se != nil && se.val.kind == listKind && len(s.Lengths) != len(se.val.list) {
			o.bad("lengths", "has %d entries but schedulers has %d; give one length per scheduler", len(s.Lengths), len(se.val.list))
		}
	}
	ie := o.get("interval_scaling")
	if ie == nil {
		if se != nil && se.val.kind == listKind {
			for range se.val.list {
				s.IntervalScaling = append(s.IntervalScaling, "rescaled")
			}
		}
		return
	}
	l, ok := d.listVal(ie.val, o.key("interval_scaling"), "[rescaled, fixed]")
	if !ok {
		return
	}
	for i, x := range l {
		key := fmt.Sprintf("%s.%d", o.key("interval_scaling"), i)
		v, ok := d.stringVal(x, key)
		if !ok {
			continue
		}
		if v != "rescaled" && v != "fixed" {
			d.add(x.pos, key, "must be rescaled or fixed, got %s", quoteShort(v))
		}
		s.IntervalScaling = append(s.IntervalScaling, v)
	}
	if se != nil && se.val.kind == listKind && len(l) != len(se.val.list) {
		o.bad("interval_scaling", "has %d entries but schedulers has %d; give one per scheduler", len(l), len(se.val.list))
	}
}
