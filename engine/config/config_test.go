package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// base is a minimal valid config; tests edit it line by line, so the line
// numbers in their expected messages refer to it.
var baseLines = []string{
	"num_epochs: 2",                 // 1
	"loss:",                         // 2
	"  name: CrossEntropyLoss",      // 3
	"dataset:",                      // 4
	"  train:",                      // 5
	"    name: mnist",               // 6
	"    batchsize_per_replica: 32", // 7
	"model:",                        // 8
	"  name: mlp",                   // 9
	"  input_dim: 784",              // 10
	"  output_dim: 10",              // 11
	"optimizer:",                    // 12
	"  name: sgd",                   // 13
	"  lr: 0.1",                     // 14
}

// edited returns the base config with lines replaced (1-based; a
// replacement may hold several lines, or none).
func edited(repl map[int]string) string {
	var out []string
	for i, l := range baseLines {
		if r, ok := repl[i+1]; ok {
			if r != "" {
				out = append(out, r)
			}
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n") + "\n"
}

// inDir writes files into a fresh directory and makes it the working
// directory, so that messages name them as "f.yaml".
func inDir(t *testing.T, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
}

func mustLoad(t *testing.T, files []string, overrides ...string) *Config {
	t.Helper()
	c, err := Load(files, overrides)
	if err != nil {
		t.Fatalf("Load(%v, %q): %v", files, overrides, err)
	}
	return c
}

// checkInvalid asserts err wraps ErrInvalid and its message contains each
// of want.
func checkInvalid(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error does not wrap ErrInvalid: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n  %s\ndoes not contain\n  %s", err, w)
		}
	}
}

func TestBaseIsValid(t *testing.T) {
	inDir(t, map[string]string{"f.yaml": edited(nil)})
	c := mustLoad(t, []string{"f.yaml"})
	if c.NumEpochs != 2 || c.Optimizer.LR.Value != 0.1 {
		t.Fatalf("unexpected config %+v", c)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		repl map[int]string
		want []string
	}{
		{"unknown key, near a known one", map[int]string{14: "  lr: 0.1\n  lrr: 0.2"},
			[]string{`f.yaml:15: optimizer.lrr: unknown key for optimizer "sgd"; did you mean "lr"?`}},
		{"unknown key, nothing near", map[int]string{11: "  output_dim: 10\n  colour: blue"},
			[]string{`f.yaml:12: model.colour: unknown key for model "mlp"; known keys: `, "first_batchnorm", "hidden_dims"}},
		{"unknown top-level key", map[int]string{1: "num_epochs: 2\nepochs: 3"},
			[]string{`f.yaml:2: epochs: unknown key for the task; did you mean "num_epochs"?`}},
		{"key valid for another optimizer", map[int]string{13: "  name: adam", 14: "  lr: 0.1\n  momentum: 0.9"},
			[]string{`f.yaml:15: optimizer.momentum: unknown key for optimizer "adam"; known keys: betas, eps, lr, `}},
		{"string into int", map[int]string{7: `    batchsize_per_replica: "32"`},
			[]string{`f.yaml:7: dataset.train.batchsize_per_replica: expected an integer, got the string "32"; write the number without quotes`}},
		{"word into int", map[int]string{1: "num_epochs: ten"},
			[]string{`f.yaml:1: num_epochs: expected an integer, got the string "ten"`}},
		{"non-integral into int", map[int]string{1: "num_epochs: 1.5"},
			[]string{`f.yaml:1: num_epochs: expected an integer, got 1.5, which is not a whole number`}},
		{"map into list", map[int]string{11: "  output_dim: 10\n  hidden_dims: {a: 1}"},
			[]string{`f.yaml:12: model.hidden_dims: expected a list like [512, 256], got a mapping`}},
		{"list into map", map[int]string{8: "model: [mlp]", 9: "", 10: "", 11: ""},
			[]string{`f.yaml:8: model: expected a mapping (key: value pairs), got a list`}},
		{"string into float", map[int]string{14: "  lr: fast"},
			[]string{`f.yaml:14: optimizer.lr: expected a number or a scheduler mapping`, `got the string "fast"`}},
		{"string into bool", map[int]string{7: "    batchsize_per_replica: 32\n    use_shuffle: 'yes'"},
			[]string{`f.yaml:8: dataset.train.use_shuffle: expected true or false, got the string "yes"; write true without quotes`}},
		{"number into string", map[int]string{13: "  name: 7"},
			[]string{`f.yaml:13: optimizer.name: expected a string, got the integer 7; quote it if a string is meant`}},
		{"num_epochs < 1", map[int]string{1: "num_epochs: 0"},
			[]string{`f.yaml:1: num_epochs: must be at least 1, got 0`}},
		{"num_epochs missing", map[int]string{1: ""},
			[]string{`num_epochs: required but not set; add num_epochs: N (N >= 1) to the config, or the override +num_epochs=N`}},
		{"batchsize < 1", map[int]string{7: "    batchsize_per_replica: 0"},
			[]string{`f.yaml:7: dataset.train.batchsize_per_replica: must be at least 1, got 0`}},
		{"batchsize missing", map[int]string{7: ""},
			[]string{`f.yaml:5: dataset.train.batchsize_per_replica: required but not set`}},
		{"lr twice", map[int]string{14: "  lr: 0.1\n  param_schedulers:\n    lr: {name: constant, value: 0.1}"},
			[]string{`f.yaml:16: optimizer.param_schedulers.lr: the learning rate is given twice, here and as optimizer.lr (at f.yaml:14); keep one`}},
		{"lr missing", map[int]string{14: ""},
			[]string{`f.yaml:12: optimizer.lr: required but not set; set optimizer.lr: 0.1, or a scheduler in optimizer.param_schedulers.lr`}},
		{"lr negative", map[int]string{14: "  lr: -0.1"},
			[]string{`f.yaml:14: optimizer.lr: must be a finite number >= 0, got -0.1`}},
		{"unknown optimizer", map[int]string{13: "  name: sgdd"},
			[]string{`f.yaml:13: optimizer.name: unknown optimizer "sgdd"; known: sgd, adam, adamw (did you mean "sgd"?)`}},
		{"unknown loss", map[int]string{3: "  name: soft_target_cross_entropy"},
			[]string{`f.yaml:3: loss.name: unknown loss "soft_target_cross_entropy"; known: CrossEntropyLoss, cross_entropy`}},
		{"unknown model", map[int]string{9: "  name: vgg"},
			[]string{`f.yaml:9: model.name: unknown model "vgg"; known: mlp, lenet, resnet`}},
		{"resnet without heads", map[int]string{9: "  name: resnet\n  num_blocks: [1]", 10: "", 11: ""},
			[]string{`f.yaml:8: model.heads: required but not set`}},
		{"resnet head off the last block", map[int]string{9: "  name: resnet\n  num_blocks: [1, 2]\n  basic_layer: true\n  reduction: 1\n  heads: [{name: fully_connected, num_classes: 10, fork_block: block0-0, in_plane: 64}]", 10: "", 11: ""},
			[]string{`model.heads.0.fork_block: "block0-0": Cohort forks the head only from the last block, block1-1`}},
		{"resnet head width", map[int]string{9: "  name: resnet\n  num_blocks: [1]\n  heads: [{name: fully_connected, num_classes: 10, fork_block: block0-0, in_plane: 64}]", 10: "", 11: ""},
			[]string{`model.heads.0.in_plane: is 64, but block0-0 has 256 channels (init_planes 64 × reduction 4 × 2^0); set in_plane: 256`}},
		{"resnext", map[int]string{9: "  name: resnet\n  num_blocks: [1]\n  base_width_and_cardinality: [4, 32]\n  heads: [{name: fully_connected, num_classes: 10, fork_block: block0-0, in_plane: 256}]", 10: "", 11: ""},
			[]string{`model.base_width_and_cardinality: grouped convolutions (ResNeXt) are not supported`}},
		{"unknown dataset", map[int]string{6: "    name: imagenet"},
			[]string{`f.yaml:6: dataset.train.name: unknown dataset "imagenet"; known: mnist, synthetic, synthetic_image`}},
		{"dataset name missing", map[int]string{6: ""},
			[]string{`f.yaml:5: dataset.train.name: required but not set; give the dataset's name, one of: mnist, synthetic, synthetic_image`}},
		{"dataset.train missing", map[int]string{5: "  test:"},
			[]string{`f.yaml:4: dataset.train: required but not set`}},
		{"topk < 1", map[int]string{14: "  lr: 0.1\nmeters:\n  accuracy: {topk: [0, 1]}"},
			[]string{`f.yaml:16: meters.accuracy.topk.0: must be at least 1, got 0`}},
		{"topk above classes", map[int]string{14: "  lr: 0.1\nmeters:\n  accuracy:\n    topk: [1, 20]"},
			[]string{`f.yaml:17: meters.accuracy.topk.1: top-20 accuracy needs at least 20 outputs, but model.output_dim is 10`}},
		{"unknown meter", map[int]string{14: "  lr: 0.1\nmeters:\n  precision_at_k: {topk: [1]}"},
			[]string{`f.yaml:16: meters.precision_at_k: unknown key for meters`, "known keys: accuracy"}},
		{"amp_args", map[int]string{1: "num_epochs: 2\namp_args: {opt_level: O1}"},
			[]string{`f.yaml:2: amp_args: mixed precision not supported on CPU; remove amp_args or set it to null`}},
		{"batch_norm_sync_mode", map[int]string{1: "num_epochs: 2\nbatch_norm_sync_mode: apex"},
			[]string{`f.yaml:2: batch_norm_sync_mode: "apex" is NVIDIA Apex's implementation; Cohort's synchronised BatchNorm is selected with pytorch`}},
		{"first_batchnorm alone", map[int]string{11: "  output_dim: 10\n  first_batchnorm: true"},
			[]string{`f.yaml:12: model.first_batchnorm: needs use_batchnorm: true as well`}},
		{"use_augmentation", map[int]string{6: "    name: mnist\n    use_augmentation: true"},
			[]string{`dataset.train.use_augmentation: is not supported`}},
		{"mnist input_dim", map[int]string{10: "  input_dim: 100"},
			[]string{`f.yaml:10: model.input_dim: is 100, but dataset.train (mnist) has 28x28 images, 784 values each; set input_dim: 784 or leave it out`}},
		{"synthetic input_dim", map[int]string{6: "    name: synthetic\n    crop_size: 8"},
			[]string{`f.yaml:11: model.input_dim: is 784, but dataset.train (synthetic) has 1x8x8 samples (crop_size 8), 64 values each; set input_dim: 64 or leave it out`}},
		{"synthetic_image input_dim", map[int]string{6: "    name: synthetic_image\n    crop_size: 16\n    num_samples: 64"},
			[]string{`f.yaml:12: model.input_dim: is 784, but dataset.train (synthetic_image) has 3x16x16 images (crop_size 16), 768 values each; set input_dim: 768 or leave it out`}},
		{"topk above classes, output_dim unset", map[int]string{10: "", 11: "", 14: "  lr: 0.1\nmeters:\n  accuracy:\n    topk: [1, 20]"},
			[]string{`f.yaml:15: meters.accuracy.topk.1: top-20 accuracy needs at least 20 classes, but dataset.train has 10 (and model.output_dim is not set)`}},
		{"test samples differ from train", map[int]string{10: "", 11: "", 7: "    batchsize_per_replica: 32\n  test: {name: synthetic, crop_size: 8, batchsize_per_replica: 8}"},
			[]string{`f.yaml:8: dataset.test: samples have 64 values but dataset.train's have 784; the model takes one input size`}},
		{"output_dim below classes", map[int]string{11: "  output_dim: 5"},
			[]string{`f.yaml:11: model.output_dim: is 5, but dataset.train has 10 classes; set output_dim: 10`}},
		{"dropout range", map[int]string{11: "  output_dim: 10\n  dropout: 1.5"},
			[]string{`f.yaml:12: model.dropout: must be in [0, 1), got 1.5`}},
		{"momentum range", map[int]string{14: "  lr: 0.1\n  momentum: 1"},
			[]string{`f.yaml:15: optimizer.momentum: must be in [0, 1), got 1`}},
		{"nesterov without momentum", map[int]string{14: "  lr: 0.1\n  nesterov: true"},
			[]string{`f.yaml:15: optimizer.nesterov: Nesterov momentum needs momentum > 0`}},
		{"betas length", map[int]string{13: "  name: Adam", 14: "  lr: 0.1\n  betas: [0.9]"},
			[]string{`f.yaml:15: optimizer.betas: must be two numbers [beta1, beta2], got 1`}},
		{"simulated batch not a multiple", map[int]string{1: "num_epochs: 2\nsimulated_global_batchsize: 100"},
			[]string{`f.yaml:2: simulated_global_batchsize: 100 is not a multiple of dataset.train.batchsize_per_replica (32)`}},
		{"transforms not a list", map[int]string{7: "    batchsize_per_replica: 32\n    transforms: {name: ToTensor}"},
			[]string{`f.yaml:8: dataset.train.transforms: expected a list like [{name: ToTensor}], got a mapping`}},
		{"task name", map[int]string{1: "num_epochs: 2\nname: ../runs"},
			[]string{`f.yaml:2: name: "../runs" cannot name a run folder; use letters, digits, '.', '_' and '-' (not starting with '.'), e.g. mnist_mlp`}},
		{"synthetic needs crop_size", map[int]string{6: "    name: synthetic_image\n    num_samples: 10"},
			[]string{`f.yaml:5: dataset.train.crop_size: required but not set`}},
		{"unknown key beside a missing name", map[int]string{13: "  lrr: 0.1"},
			[]string{`f.yaml:12: optimizer.name: required but not set`, `f.yaml:13: optimizer.lrr: unknown key for an optimizer; did you mean "lr"?`}},
		{"unknown key beside an unknown name", map[int]string{6: "    name: imagenet\n    batch_size: 32"},
			[]string{`f.yaml:6: dataset.train.name: unknown dataset "imagenet"`, `f.yaml:7: dataset.train.batch_size: unknown key for a dataset; did you mean "batchsize_per_replica"?`}},
		{"several problems at once", map[int]string{1: "num_epochs: 0", 7: "    batchsize_per_replica: -1"},
			[]string{"2 config problems:", "\n  f.yaml:1: num_epochs: must be at least 1", "\n  f.yaml:7: dataset.train.batchsize_per_replica: must be at least 1"}},

		// schedulers
		{"unknown scheduler", map[int]string{14: "  lr: {name: cosin, start_value: 1, end_value: 0}"},
			[]string{`f.yaml:14: optimizer.lr.name: unknown scheduler "cosin"; known: constant, step, multistep, cosine, linear, composite (did you mean "cosine"?)`}},
		{"scheduler field missing", map[int]string{14: "  lr: {name: cosine, start_value: 1}"},
			[]string{`f.yaml:14: optimizer.lr.end_value: required but not set; a cosine scheduler needs end_value`}},
		{"scheduler unknown field", map[int]string{14: "  lr: {name: constant, value: 1, values: [1]}"},
			[]string{`f.yaml:14: optimizer.lr.values: unknown key for scheduler "constant"; did you mean "value"?`}},
		{"update_interval", map[int]string{14: "  lr: {name: constant, value: 1, update_interval: batch}"},
			[]string{`f.yaml:14: optimizer.lr.update_interval: must be step or epoch, got "batch"`}},
		{"step values missing", map[int]string{14: "  lr: {name: step}"},
			[]string{`optimizer.lr.values: required but not set; a step scheduler needs values: [v1, v2, ...]`}},
		{"multistep milestone count", map[int]string{1: "num_epochs: 10", 14: "  lr: {name: multistep, values: [1, 0.1, 0.01], milestones: [1]}"},
			[]string{`f.yaml:14: optimizer.lr.milestones: needs 2 milestones (one fewer than values), got 1`}},
		{"multistep milestone beyond epochs", map[int]string{14: "  lr: {name: multistep, values: [1, 0.1], milestones: [2]}"},
			[]string{`optimizer.lr.milestones: milestone 2 is not below num_epochs (2)`}},
		{"multistep more values than epochs", map[int]string{14: "  lr: {name: multistep, values: [1, 0.1, 0.01]}"},
			[]string{`optimizer.lr.values: lists 3 values but the task has only num_epochs 2`}},
		{"composite lengths sum", map[int]string{14: "  param_schedulers:\n    lr:\n      name: composite\n      schedulers: [{name: constant, value: 1}, {name: constant, value: 0.1}]\n      lengths: [0.5, 0.6]"},
			[]string{`f.yaml:18: optimizer.param_schedulers.lr.lengths: must sum to 1, got 1.1`}},
		{"composite lengths count", map[int]string{14: "  param_schedulers:\n    lr:\n      name: composite\n      schedulers: [{name: constant, value: 1}, {name: constant, value: 0.1}]\n      lengths: [1]"},
			[]string{`f.yaml:18: optimizer.param_schedulers.lr.lengths: has 1 entries but schedulers has 2`}},
		{"composite interval_scaling count", map[int]string{14: "  param_schedulers:\n    lr:\n      name: composite\n      schedulers: [{name: constant, value: 1}, {name: constant, value: 0.1}]\n      lengths: [0.5, 0.5]\n      interval_scaling: [fixed]"},
			[]string{`f.yaml:19: optimizer.param_schedulers.lr.interval_scaling: has 1 entries but schedulers has 2`}},
		{"composite interval_scaling value", map[int]string{14: "  param_schedulers:\n    lr:\n      name: composite\n      schedulers: [{name: constant, value: 1}]\n      lengths: [1]\n      interval_scaling:\n        - stretched"},
			[]string{`f.yaml:20: optimizer.param_schedulers.lr.interval_scaling.0: must be rescaled or fixed, got "stretched"`}},
		{"composite nested problem", map[int]string{14: "  param_schedulers:\n    lr:\n      name: composite\n      schedulers:\n        - {name: linear, start_value: 0}\n      lengths: [1]"},
			[]string{`f.yaml:18: optimizer.param_schedulers.lr.schedulers.0.end_value: required but not set`}},
		{"param_schedulers for another param", map[int]string{14: "  lr: 0.1\n  param_schedulers:\n    weight_decay: {name: constant, value: 0}"},
			[]string{`f.yaml:16: optimizer.param_schedulers.weight_decay: unknown key for optimizer.param_schedulers (Cohort schedules only lr)`}},
		{"param_schedulers.lr a number", map[int]string{14: "  param_schedulers: {lr: 0.1}"},
			[]string{`f.yaml:14: optimizer.param_schedulers.lr: expected a scheduler mapping like {name: constant, value: 0.1}, got the number 0.1 (a plain number goes in optimizer.lr)`}},

		// the file itself
		{"syntax error", map[int]string{10: "  input_dim: 784: 3"},
			[]string{`f.yaml:10: YAML syntax error: mapping value is not allowed in this context`}},
		{"unclosed bracket (reported where the parser notices)", map[int]string{10: "  input_dim: [784"},
			[]string{`f.yaml:11: YAML syntax error: ',' or ']' must be specified`}},
		{"tab indentation", map[int]string{10: "\tinput_dim: 784"},
			[]string{`f.yaml:10: YAML syntax error: `}},
		{"duplicate key", map[int]string{10: "  input_dim: 784\n  input_dim: 785"},
			[]string{`f.yaml:11: YAML syntax error: `, `"input_dim" already defined`}},
		{"two documents", map[int]string{14: "  lr: 0.1\n---\nnum_epochs: 3"},
			[]string{`f.yaml:16: YAML syntax error: a second YAML document (---) starts here; a config holds exactly one`}},
		{"alias to nowhere", map[int]string{14: "  lr: *rate"},
			[]string{`f.yaml:14: YAML syntax error: `}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inDir(t, map[string]string{"f.yaml": edited(tc.repl)})
			_, err := Load([]string{"f.yaml"}, nil)
			checkInvalid(t, err, tc.want...)
		})
	}
}

func TestFileErrors(t *testing.T) {
	inDir(t, map[string]string{
		"list.yaml":   "- 1\n- 2\n",
		"empty.yaml":  "# nothing\n",
		"bad.json":    "{\n  \"num_epochs\": 2,\n  \"loss\": {\"name\": \"CrossEntropyLoss\"\n}\n",
		"latin1.yaml": "name: caf\xe9\n",
	})
	_, err := Load([]string{"missing.yaml"}, nil)
	checkInvalid(t, err, "missing.yaml: cannot read config file: no such file or directory")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file error does not wrap fs.ErrNotExist: %v", err)
	}
	_, err = Load([]string{"."}, nil)
	checkInvalid(t, err, ".: cannot read config file: ")

	_, err = Load([]string{"list.yaml"}, nil)
	checkInvalid(t, err, "list.yaml:1: a config file must be a mapping (key: value lines or a JSON object), not a list")

	_, err = Load([]string{"bad.json"}, nil)
	checkInvalid(t, err, "bad.json:", "YAML syntax error")

	_, err = Load([]string{"latin1.yaml"}, nil)
	checkInvalid(t, err, "latin1.yaml: YAML syntax error: not valid UTF-8")

	// An empty file is an empty layer: the result lacks everything.
	_, err = Load([]string{"empty.yaml"}, nil)
	checkInvalid(t, err, "num_epochs: required but not set", "loss: required but not set")

	// Every unreadable file is reported, not just the first.
	_, err = Load([]string{"nope1.yaml", "nope2.yaml"}, nil)
	checkInvalid(t, err, "nope1.yaml: cannot read", "nope2.yaml: cannot read")
}

func TestClassyVisionJSON(t *testing.T) {
	c := mustLoad(t, []string{"testdata/classy_synthetic_image.json"})
	transforms := []map[string]any{{
		"name": "apply_transform_to_key",
		"key":  "input",
		"transforms": []any{
			map[string]any{"name": "ToTensor"},
			map[string]any{"name": "Normalize", "mean": []any{0.485, 0.456, 0.406}, "std": []any{0.229, 0.224, 0.225}},
		},
	}}
	want := &Config{
		Name: "classification_task", NumEpochs: 4, TestPhasePeriod: 1,
		SimulatedGlobalBatchsize: 64, ClipGradNorm: 1,
		Model: Model{Name: "mlp", InputDim: 192, OutputDim: 10, HiddenDims: []int{64, 32}, Dropout: 0.1},
		Loss:  Loss{Name: "cross_entropy"},
		Optimizer: Optimizer{
			Name: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4,
			LR: Schedule{
				Name: "composite", NumEpochs: 4, UpdateInterval: "step",
				Schedulers: []Schedule{
					{Name: "linear", StartValue: 0.01, EndValue: 0.1, NumEpochs: 4, UpdateInterval: "step"},
					{Name: "cosine", StartValue: 0.1, EndValue: 0.0001, NumEpochs: 4, UpdateInterval: "step"},
				},
				Lengths:         []float64{0.25, 0.75},
				IntervalScaling: []string{"rescaled", "fixed"},
			},
		},
		Meters: Meters{Accuracy: &Accuracy{TopK: []int{1, 5}}},
	}
	want.Dataset.Train = &Dataset{Name: "synthetic_image", BatchsizePerReplica: 32, UseShuffle: true, NumSamples: 320,
		NumClasses: 2, CropSize: 8, ClassRatio: 0.5, Seed: 0, Transforms: transforms, NumWorkers: 1}
	want.Dataset.Test = &Dataset{Name: "synthetic_image", BatchsizePerReplica: 32, UseShuffle: false, NumSamples: 100,
		NumClasses: 2, CropSize: 8, ClassRatio: 0.5, Seed: 1, NumWorkers: 1}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%s\nwant\n%s", dump(t, c), dump(t, want))
	}
}

func TestOlderLRSchedulerForm(t *testing.T) {
	c := mustLoad(t, []string{"testdata/classy_old_lr.json"})
	want := Schedule{Name: "step", Values: []float64{0.1, 0.01, 0.001}, NumEpochs: 6, UpdateInterval: "epoch"}
	if !reflect.DeepEqual(c.Optimizer.LR, want) {
		t.Errorf("LR = %+v, want %+v", c.Optimizer.LR, want)
	}
	if c.Dataset.Test.UseShuffle || !c.Dataset.Train.UseShuffle {
		t.Errorf("use_shuffle defaults wrong: train %v test %v", c.Dataset.Train.UseShuffle, c.Dataset.Test.UseShuffle)
	}
	// optimizer.num_epochs, as older configs carry, follows the task's.
	c = mustLoad(t, []string{"testdata/classy_old_lr.json"}, "num_epochs=3")
	if c.Optimizer.LR.NumEpochs != 3 {
		t.Errorf("scheduler num_epochs = %d, want the task's 3", c.Optimizer.LR.NumEpochs)
	}
	// Both forms of the old map: the lr map and a plain number elsewhere.
	c = mustLoad(t, []string{"testdata/classy_old_lr.json"}, "optimizer.lr={name: multistep, values: [1, 0.1], milestones: [4]}")
	if got := c.Optimizer.LR; got.Name != "multistep" || !reflect.DeepEqual(got.Milestones, []int{4}) || !reflect.DeepEqual(got.Values, []float64{1, 0.1}) {
		t.Errorf("override into the lr map: %+v", got)
	}
}

func TestMultistepDefaultMilestones(t *testing.T) {
	inDir(t, map[string]string{"f.yaml": edited(map[int]string{1: "num_epochs: 10", 14: "  lr: {name: multistep, values: [1, 0.1, 0.01]}"})})
	c := mustLoad(t, []string{"f.yaml"})
	// fvcore: step width ceil(10/3) = 4.
	if !reflect.DeepEqual(c.Optimizer.LR.Milestones, []int{4, 8}) {
		t.Errorf("milestones = %v, want [4 8]", c.Optimizer.LR.Milestones)
	}
}

func TestDefaults(t *testing.T) {
	inDir(t, map[string]string{
		"f.yaml":     edited(nil),
		"adam.yaml":  "optimizer: {name: Adam}\ndataset: {test: {name: mnist, batchsize_per_replica: 8}}\n",
		"adamw.yaml": "optimizer: {name: AdamW}\nmeters: {accuracy: {}}\n",
	})
	c := mustLoad(t, []string{"f.yaml"})
	if c.Name != "classification_task" || c.TestPhasePeriod != 1 || c.SimulatedGlobalBatchsize != 0 || c.ClipGradNorm != 0 {
		t.Errorf("top-level defaults: %+v", c)
	}
	if !c.Dataset.Train.UseShuffle || c.Dataset.Test != nil {
		t.Errorf("dataset defaults: train %+v test %+v", c.Dataset.Train, c.Dataset.Test)
	}
	o := c.Optimizer
	wantLR := Schedule{Name: "constant", Value: 0.1, NumEpochs: 2, UpdateInterval: "epoch"}
	if o.Momentum != 0 || o.Nesterov || o.WeightDecay != 0 || !reflect.DeepEqual(o.LR, wantLR) {
		t.Errorf("sgd defaults: %+v", o)
	}
	if m := c.Model; m.Dropout != 0 || m.FirstDropout || m.HiddenDims != nil {
		t.Errorf("model defaults: %+v", m)
	}
	if c.Meters.Accuracy != nil {
		t.Errorf("meters are opt-in, got %+v", c.Meters.Accuracy)
	}

	c = mustLoad(t, []string{"f.yaml", "adam.yaml"})
	if o := c.Optimizer; o.Name != "adam" || o.Betas != [2]float64{0.9, 0.999} || o.Eps != 1e-8 || o.WeightDecay != 0 {
		t.Errorf("adam defaults: %+v", o)
	}
	if c.Dataset.Test == nil || c.Dataset.Test.UseShuffle {
		t.Errorf("test use_shuffle should default to false: %+v", c.Dataset.Test)
	}
	c = mustLoad(t, []string{"f.yaml", "adamw.yaml"})
	if o := c.Optimizer; o.Name != "adamw" || o.WeightDecay != 0.01 {
		t.Errorf("adamw defaults: %+v", o)
	}
	if c.Meters.Accuracy == nil || !reflect.DeepEqual(c.Meters.Accuracy.TopK, []int{1}) {
		t.Errorf("accuracy: {} should default topk to [1]: %+v", c.Meters.Accuracy)
	}
}

func TestDatasetAndModelDefaults(t *testing.T) {
	inDir(t, map[string]string{
		"synth.yaml": edited(map[int]string{6: "    name: synthetic", 10: "", 11: ""}),
		"image.yaml": edited(map[int]string{6: "    name: synthetic_image\n    crop_size: 4\n    num_samples: 10", 10: "", 11: ""}),
	})
	c := mustLoad(t, []string{"synth.yaml"})
	want := &Dataset{Name: "synthetic", BatchsizePerReplica: 32, UseShuffle: true, NumSamples: 1024, NumClasses: 10, CropSize: 28, NumWorkers: 1}
	if !reflect.DeepEqual(c.Dataset.Train, want) {
		t.Errorf("synthetic defaults: %+v, want %+v", c.Dataset.Train, want)
	}
	if c.Model.InputDim != 0 || c.Model.OutputDim != 0 {
		t.Errorf("model dims should stay 0 (from the dataset): %+v", c.Model)
	}
	c = mustLoad(t, []string{"image.yaml"})
	want = &Dataset{Name: "synthetic_image", BatchsizePerReplica: 32, UseShuffle: true, NumSamples: 10, NumClasses: 2, CropSize: 4, ClassRatio: 0.5, NumWorkers: 1}
	if !reflect.DeepEqual(c.Dataset.Train, want) {
		t.Errorf("synthetic_image defaults: %+v, want %+v", c.Dataset.Train, want)
	}
}

// TestShippedConfigs loads the repository's own configs.
func TestShippedConfigs(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "configs", "*.*"))
	if len(files) == 0 {
		t.Skip("no configs/ here")
	}
	for _, f := range files {
		if _, err := Load([]string{f}, nil); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestAliases(t *testing.T) {
	cases := []struct{ loss, opt, wantLoss, wantOpt string }{
		{"CrossEntropyLoss", "sgd", "cross_entropy", "sgd"},
		{"cross_entropy", "SGD", "cross_entropy", "sgd"},
		{"CrossEntropyLoss", "Adam", "cross_entropy", "adam"},
		{"CrossEntropyLoss", "adam", "cross_entropy", "adam"},
		{"CrossEntropyLoss", "AdamW", "cross_entropy", "adamw"},
		{"CrossEntropyLoss", "adamw", "cross_entropy", "adamw"},
	}
	for _, tc := range cases {
		inDir(t, map[string]string{"f.yaml": edited(map[int]string{3: "  name: " + tc.loss, 13: "  name: " + tc.opt})})
		c := mustLoad(t, []string{"f.yaml"})
		if c.Loss.Name != tc.wantLoss || c.Optimizer.Name != tc.wantOpt {
			t.Errorf("%s/%s → %s/%s", tc.loss, tc.opt, c.Loss.Name, c.Optimizer.Name)
		}
	}
}

func TestDeepMerge(t *testing.T) {
	c := mustLoad(t, []string{"testdata/base.yaml", "testdata/layer.yaml"})
	// scalars from the later file
	if c.NumEpochs != 3 || c.Dataset.Train.BatchsizePerReplica != 64 || c.Optimizer.Name != "adamw" || c.Optimizer.WeightDecay != 0.05 {
		t.Errorf("later scalars should win: %+v / %+v", c, c.Optimizer)
	}
	// keys only in the earlier file survive the merge of their mapping
	if c.Dataset.Train.Name != "mnist" || c.Dataset.Test.BatchsizePerReplica != 128 || c.Model.Dropout != 0.2 || c.Optimizer.LR.Value != 0.1 {
		t.Errorf("earlier keys should survive: train %+v test %+v model %+v", c.Dataset.Train, c.Dataset.Test, c.Model)
	}
	// keys only in the later file are added
	if c.Dataset.Train.Root != "/data/mnist" {
		t.Errorf("root = %q", c.Dataset.Train.Root)
	}
	// lists replace, they do not concatenate
	if !reflect.DeepEqual(c.Model.HiddenDims, []int{64}) {
		t.Errorf("hidden_dims = %v, want [64]", c.Model.HiddenDims)
	}
	// a null in a later layer unsets (momentum is not an adamw key)
	if c.Optimizer.Momentum != 0 {
		t.Errorf("momentum = %v", c.Optimizer.Momentum)
	}

	// Problems name the file that wrote the value.
	inDir(t, map[string]string{
		"a.yaml": edited(nil),
		"b.yaml": "# layer\nmodel:\n  hidden_dims: [8, 0]\noptimizer:\n  lrr: 1\n",
	})
	_, err := Load([]string{"a.yaml", "b.yaml"}, nil)
	checkInvalid(t, err,
		"b.yaml:3: model.hidden_dims.1: must be at least 1, got 0",
		`b.yaml:5: optimizer.lrr: unknown key for optimizer "sgd"; did you mean "lr"?`)
}

func TestOverrides(t *testing.T) {
	inDir(t, map[string]string{"f.yaml": edited(map[int]string{
		11: "  output_dim: 10\n  hidden_dims: [32]",
		14: "  lr: 0.1\nmeters:\n  accuracy: {topk: [1]}",
	})})
	cases := []struct {
		name      string
		overrides []string
		check     func(c *Config) bool
	}{
		{"set float", []string{"optimizer.lr=0.5"}, func(c *Config) bool { return c.Optimizer.LR.Value == 0.5 }},
		{"set int", []string{"num_epochs=7"}, func(c *Config) bool { return c.NumEpochs == 7 }},
		{"set exponent float", []string{"optimizer.lr=1e-3"}, func(c *Config) bool { return c.Optimizer.LR.Value == 1e-3 }},
		{"set list", []string{"meters.accuracy.topk=[1,5]"}, func(c *Config) bool { return reflect.DeepEqual(c.Meters.Accuracy.TopK, []int{1, 5}) }},
		{"set string", []string{"optimizer.name=adam"}, func(c *Config) bool { return c.Optimizer.Name == "adam" }},
		{"set quoted string", []string{"+dataset.train.root='1'"}, func(c *Config) bool { return c.Dataset.Train.Root == "1" }},
		{"set string with spaces", []string{"+dataset.train.root=/data/my mnist"}, func(c *Config) bool { return c.Dataset.Train.Root == "/data/my mnist" }},
		{"empty value is the empty string", []string{"+dataset.train.root="}, func(c *Config) bool { return c.Dataset.Train.Root == "" }},
		{"set bool", []string{"+dataset.train.use_shuffle=false"}, func(c *Config) bool { return !c.Dataset.Train.UseShuffle }},
		{"set map merges", []string{"model={hidden_dims: [4, 4]}"}, func(c *Config) bool {
			return reflect.DeepEqual(c.Model.HiddenDims, []int{4, 4}) && c.Model.InputDim == 784
		}},
		{"scalar replaces map", []string{"optimizer.lr={name: cosine, start_value: 0.1, end_value: 0}", "optimizer.lr=0.3"},
			func(c *Config) bool { return c.Optimizer.LR.Name == "constant" && c.Optimizer.LR.Value == 0.3 }},
		{"add nested, creating parents", []string{"~optimizer.lr", "+optimizer.param_schedulers.lr={name: cosine, start_value: 0.1, end_value: 0}"},
			func(c *Config) bool {
				return c.Optimizer.LR.Name == "cosine" && c.Optimizer.LR.UpdateInterval == "step"
			}},
		{"add leaf by leaf", []string{"~optimizer.lr", "+optimizer.param_schedulers.lr.name=constant", "+optimizer.param_schedulers.lr.value=0.2"},
			func(c *Config) bool { return c.Optimizer.LR.Name == "constant" && c.Optimizer.LR.Value == 0.2 }},
		{"add test dataset", []string{"+dataset.test={name: mnist, batchsize_per_replica: 64}"},
			func(c *Config) bool {
				return c.Dataset.Test != nil && c.Dataset.Test.BatchsizePerReplica == 64 && !c.Dataset.Test.UseShuffle
			}},
		{"force add", []string{"++optimizer.momentum=0.9"}, func(c *Config) bool { return c.Optimizer.Momentum == 0.9 }},
		{"force set", []string{"++optimizer.lr=0.01"}, func(c *Config) bool { return c.Optimizer.LR.Value == 0.01 }},
		{"delete", []string{"~meters"}, func(c *Config) bool { return c.Meters.Accuracy == nil }},
		{"delete if value matches", []string{"~model.hidden_dims=[32]"}, func(c *Config) bool { return c.Model.HiddenDims == nil }},
		{"delete, number compared by value", []string{"~optimizer.lr=0.10", "+optimizer.lr=1"}, func(c *Config) bool { return c.Optimizer.LR.Value == 1 }},
		{"list index", []string{"model.hidden_dims.0=16"}, func(c *Config) bool { return reflect.DeepEqual(c.Model.HiddenDims, []int{16}) }},
		{"delete list element", []string{"~model.hidden_dims.0"}, func(c *Config) bool { return c.Model.HiddenDims == nil }},
		{"later override wins", []string{"num_epochs=3", "num_epochs=4"}, func(c *Config) bool { return c.NumEpochs == 4 }},
		{"null unsets", []string{"+optimizer.momentum=0.5", "optimizer.momentum=null"}, func(c *Config) bool { return c.Optimizer.Momentum == 0 }},
		{"composite element", []string{"~optimizer.lr",
			"+optimizer.param_schedulers.lr={name: composite, schedulers: [{name: linear, start_value: 0, end_value: 0.1}, {name: cosine, start_value: 0.1, end_value: 0}], lengths: [0.1, 0.9]}",
			"optimizer.param_schedulers.lr.schedulers.1.end_value=0.001"},
			func(c *Config) bool { return c.Optimizer.LR.Schedulers[1].EndValue == 0.001 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, []string{"f.yaml"}, tc.overrides...)
			if !tc.check(c) {
				t.Errorf("%q gave %s", tc.overrides, dump(t, c))
			}
		})
	}
}

func TestOverrideErrors(t *testing.T) {
	inDir(t, map[string]string{"f.yaml": edited(map[int]string{11: "  output_dim: 10\n  hidden_dims: [32]"})})
	cases := []struct {
		name      string
		overrides []string
		want      []string
	}{
		{"set a missing key", []string{"optimizer.momentum=0.9"},
			[]string{`override "optimizer.momentum=0.9": optimizer.momentum is not in the config; to add it use +optimizer.momentum=0.9`}},
		{"set a misspelt key", []string{"optimizer.lrr=0.5"},
			[]string{`override "optimizer.lrr=0.5": optimizer.lrr is not in the config; to add it use +optimizer.lrr=0.5 (or did you mean optimizer.lr?)`}},
		{"set under a missing parent", []string{"meters.accuracy.topk=[1]"},
			[]string{`override "meters.accuracy.topk=[1]": meters is not in the config; to add it use +meters.accuracy.topk=[1]`}},
		{"add an existing key", []string{"+optimizer.lr=0.5"},
			[]string{`override "+optimizer.lr=0.5": optimizer.lr is already set (at f.yaml:15); to change it use optimizer.lr=0.5`}},
		{"delete a missing key", []string{"~optimizer.momentum"},
			[]string{`override "~optimizer.momentum": optimizer.momentum is not in the config, so there is nothing to delete`}},
		{"delete with the wrong value", []string{"~optimizer.lr=0.2"},
			[]string{`override "~optimizer.lr=0.2": optimizer.lr is 0.1 (at f.yaml:15), not 0.2; use ~optimizer.lr to delete it whatever its value`}},
		{"no equals sign", []string{"num_epochs"},
			[]string{`override "num_epochs": expected key=value (or +key=value to add, ~key to delete)`}},
		{"no key", []string{"=3"}, []string{`override "=3": no key before '='`}},
		{"bad key", []string{"optimizer..lr=1"}, []string{`override "optimizer..lr=1": invalid key "optimizer..lr"`}},
		{"config group", []string{"optimizer/sgd=x"}, []string{`override "optimizer/sgd=x": config groups and packages`}},
		{"bad YAML value", []string{"model.hidden_dims=[1,"}, []string{`override "model.hidden_dims=[1,": value "[1," is not valid YAML: `}},
		{"sweep", []string{"optimizer.lr=0.1,0.01"}, []string{`override "optimizer.lr=0.1,0.01": a comma outside brackets is Hydra's sweep syntax`}},
		{"sweep function", []string{"optimizer.lr=choice(0.1, 0.01)"}, []string{`Hydra sweep and cast functions (choice) are not supported`}},
		{"interpolation", []string{"num_epochs=${foo}"}, []string{`interpolation (${...}) is not supported`}},
		{"through a scalar", []string{"+optimizer.lr.value=1"},
			[]string{`override "+optimizer.lr.value=1": optimizer.lr is the number 0.1 (at f.yaml:15), not a mapping, so it has no key "value"`}},
		{"list index out of range", []string{"model.hidden_dims.3=1"}, []string{`model.hidden_dims is a list of 1; "3" is not an index into it`}},
		{"add to a list", []string{"+model.hidden_dims.0=1"}, []string{`model.hidden_dims already has an element 0`}},
		{"every failing override is reported", []string{"a=1", "~b"},
			[]string{"2 config problems:", `override "a=1": a is not in the config`, `override "~b": b is not in the config`}},

		// Problems found after decoding name the override that set the value.
		{"wrong type from an override", []string{"num_epochs='1'"},
			[]string{`override "num_epochs='1'": num_epochs: expected an integer, got the string "1"; write the number without quotes`}},
		{"non-integral from an override", []string{"num_epochs=2.5"},
			[]string{`override "num_epochs=2.5": num_epochs: expected an integer, got 2.5, which is not a whole number`}},
		{"unknown key from an override", []string{"+model.hidden_dim=[3]"},
			[]string{`override "+model.hidden_dim=[3]": model.hidden_dim: unknown key for model "mlp"; did you mean "hidden_dims"?`}},
		{"range from an override", []string{"dataset.train.batchsize_per_replica=0"},
			[]string{`override "dataset.train.batchsize_per_replica=0": dataset.train.batchsize_per_replica: must be at least 1, got 0`}},
		{"map from an override", []string{"model.hidden_dims={a: 1}"},
			[]string{`override "model.hidden_dims={a: 1}": model.hidden_dims: expected a list like [512, 256], got a mapping`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]string{"f.yaml"}, tc.overrides)
			checkInvalid(t, err, tc.want...)
		})
	}
}

// TestOverrideValues checks how override values are typed.
func TestOverrideValues(t *testing.T) {
	cases := []struct {
		text string
		kind kind
		want any
	}{
		{"lr=0.1", floatKind, 0.1},
		{"lr=1e-4", floatKind, 1e-4},
		{"lr=.5", floatKind, 0.5},
		{"n=3", intKind, 3},
		{"x='1'", stringKind, "1"},
		{`x="1"`, stringKind, "1"},
		{"name=mlp", stringKind, "mlp"},
		{"b=true", boolKind, true},
		{"b=yes", stringKind, "yes"}, // YAML 1.2: not a boolean
		{"x=null", nullKind, nil},
		{"x=", stringKind, ""},
		{"topk=[1,5]", listKind, []any{1, 5}},
		{"m={a: 1, b: [x]}", mapKind, map[string]any{"a": 1, "b": []any{"x"}}},
		{"k=a=b", stringKind, "a=b"},
	}
	for _, tc := range cases {
		o, p := parseOverride(tc.text)
		if p != nil {
			t.Errorf("%q: %v", tc.text, p)
			continue
		}
		if o.value.kind != tc.kind || !reflect.DeepEqual(toAny(o.value), tc.want) {
			t.Errorf("%q: got kind %d value %#v, want kind %d value %#v", tc.text, o.value.kind, toAny(o.value), tc.kind, tc.want)
		}
	}
}

func TestYAMLFeatures(t *testing.T) {
	inDir(t, map[string]string{"f.yaml": `
defaults: &ds
  name: mnist
  batchsize_per_replica: 16
num_epochs: !!int 2
loss: {name: !!str CrossEntropyLoss}
dataset:
  train:
    <<: *ds
    use_shuffle: false
  test: *ds
model: {name: mlp, input_dim: 784, output_dim: 10}
optimizer: {name: sgd, lr: 1e-2}
`})
	// "defaults" is not a config key: anchors need a home in the file, but
	// strictness still applies to it.
	_, err := Load([]string{"f.yaml"}, nil)
	checkInvalid(t, err, `f.yaml:2: defaults: unknown key for the task`)
	c := mustLoad(t, []string{"f.yaml"}, "~defaults")
	if c.Dataset.Train.BatchsizePerReplica != 16 || c.Dataset.Train.UseShuffle || c.Dataset.Test.BatchsizePerReplica != 16 || c.Optimizer.LR.Value != 0.01 {
		t.Errorf("anchors/merge keys: train %+v test %+v lr %+v", c.Dataset.Train, c.Dataset.Test, c.Optimizer.LR)
	}
}

// TestRoundTrip: YAML() and JSON() read back to the same Config.
func TestRoundTrip(t *testing.T) {
	inDir(t, nil)
	configs := []struct {
		files     []string
		overrides []string
	}{
		{[]string{"classy_synthetic_image.json"}, nil},
		{[]string{"classy_old_lr.json"}, nil},
		{[]string{"base.yaml", "layer.yaml"}, nil},
		{[]string{"base.yaml"}, []string{"~optimizer.lr", "+optimizer.param_schedulers.lr={name: multistep, values: [0.1, 0.01], update_interval: step}", "+dataset.train.root=/tmp/a b:c"}},
		{[]string{"base.yaml"}, []string{"~optimizer.lr", "+optimizer.param_schedulers.lr={name: constant, value: 0.5, update_interval: step}", "optimizer.name=adam", "~optimizer.momentum"}},
		{[]string{"base.yaml"}, []string{"~optimizer.lr", "+optimizer.lr={name: step, values: [1, 0.5]}", "+dataset.train.transforms=[{name: 'yes', p: 1.0, n: 3, s: '1e3', x: null, l: [true, 'a: b']}]"}},
	}
	for _, cfg := range configs {
		var files []string
		for _, f := range cfg.files {
			files = append(files, filepath.Join(testdataDir(t), f))
		}
		c := mustLoad(t, files, cfg.overrides...)
		y, err := c.YAML()
		if err != nil {
			t.Fatal(err)
		}
		c2, err := Parse("resolved.yaml", y, nil)
		if err != nil {
			t.Fatalf("%v: reloading YAML():\n%s\n%v", cfg, y, err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Errorf("%v: YAML round trip differs:\n%s\n%s\n%s", cfg, y, dump(t, c), dump(t, c2))
		}
		j, err := c.JSON()
		if err != nil {
			t.Fatal(err)
		}
		c3, err := Parse("resolved.json", j, nil)
		if err != nil {
			t.Fatalf("%v: reloading JSON():\n%s\n%v", cfg, j, err)
		}
		if !reflect.DeepEqual(c, c3) {
			t.Errorf("%v: JSON round trip differs:\n%s", cfg, j)
		}
	}
}

var testdata string

func testdataDir(t *testing.T) string {
	if testdata == "" {
		t.Fatal("testdata dir unknown")
	}
	return testdata
}

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	testdata = filepath.Join(wd, "testdata")
	os.Exit(m.Run())
}

func TestSuggest(t *testing.T) {
	known := []string{"lr", "momentum", "weight_decay", "nesterov", "batchsize_per_replica", "num_epochs"}
	for key, want := range map[string]string{
		"lrr": "lr", "LR": "lr", "momentun": "momentum", "weight-decay": "weight_decay", "wieght_decay": "weight_decay",
		"batch_size": "batchsize_per_replica", "epochs": "num_epochs", "x": "", "color": "", "learning_rate": "lr",
	} {
		if got := suggest(key, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

func dump(t *testing.T, c *Config) string {
	t.Helper()
	y, err := c.YAML()
	if err != nil {
		return err.Error()
	}
	return string(y)
}
