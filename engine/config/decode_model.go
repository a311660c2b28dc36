package config

import (
	"fmt"
	"regexp"
)

// modelKnown lists the model names, for messages.
var modelKnown = []string{"mlp", "lenet", "resnet"}

// forkBlock is ClassyVision's name of a ResNet block: block<stage>-<index>.
var forkBlock = regexp.MustCompile(`^block(\d+)-(\d+)$`)

func (d *decoder) model(e *entry, m *Model) {
	o, ok := d.object("model", e.keyPos, e.val)
	if !ok {
		return
	}
	name, ok := o.name("model", modelNames, modelKnown, true)
	if !ok {
		o.unnamed("a model", modelKeys)
		return
	}
	m.Name = name
	switch name {
	case "lenet":
		// LeCun's LeNet-5 layout on 1×28×28 images; only the head is sized.
		if o.int("output_dim", &m.OutputDim) == valid && m.OutputDim < 1 {
			o.bad("output_dim", "must be at least 1 (or left out, to take it from the dataset), got %d", m.OutputDim)
		}
	case "resnet":
		d.resnet(o, m)
	default:
		d.mlp(o, m)
	}
	o.finish(fmt.Sprintf("model %q", name))
}

// mlp reads ClassyVision's MLP keys.
func (d *decoder) mlp(o *obj, m *Model) {
	for _, k := range []struct {
		key string
		dst *int
	}{{"input_dim", &m.InputDim}, {"output_dim", &m.OutputDim}} {
		// 0 (absent) means: from the dataset.
		if o.int(k.key, k.dst) == valid && *k.dst < 1 {
			o.bad(k.key, "must be at least 1 (or left out, to take it from the dataset), got %d", *k.dst)
		}
	}
	if o.ints("hidden_dims", &m.HiddenDims, "[512, 256]") == valid {
		for i, h := range m.HiddenDims {
			if h < 1 {
				d.add(d.at["model.hidden_dims"], fmt.Sprintf("model.hidden_dims.%d", i), "must be at least 1, got %d", h)
			}
		}
		if len(m.HiddenDims) == 0 {
			m.HiddenDims = nil
		}
	}
	if o.float("dropout", &m.Dropout) == valid && (m.Dropout < 0 || m.Dropout >= 1) {
		o.bad("dropout", "must be in [0, 1), got %s", formatFloat(m.Dropout))
	}
	o.bool("first_dropout", &m.FirstDropout)
	o.bool("use_batchnorm", &m.UseBatchnorm)
	if o.bool("first_batchnorm", &m.FirstBatchnorm) == valid && m.FirstBatchnorm && !m.UseBatchnorm {
		// ClassyVision asserts the same.
		o.bad("first_batchnorm", "needs use_batchnorm: true as well")
	}
}

// resnet reads ClassyVision's ResNeXt keys, for the cases Cohort builds:
// basic or bottleneck blocks, cardinality 1, one fully connected head on the
// last block.
func (d *decoder) resnet(o *obj, m *Model) {
	m.InitPlanes, m.Reduction = 64, 4
	switch o.ints("num_blocks", &m.NumBlocks, "[2, 2]") {
	case absent:
		o.missing("num_blocks", "give the blocks per stage, e.g. num_blocks: [2, 2, 2, 2] (ResNet-18 with basic_layer: true)")
	case valid:
		if len(m.NumBlocks) == 0 {
			o.bad("num_blocks", "needs at least one stage, e.g. [2, 2]")
		}
		for i, n := range m.NumBlocks {
			if n < 1 {
				d.add(d.at["model.num_blocks"], fmt.Sprintf("model.num_blocks.%d", i), "must be at least 1, got %d", n)
			}
		}
	}
	o.bool("small_input", &m.SmallInput)
	o.bool("zero_init_bn_residuals", &m.ZeroInitBNResiduals)
	o.bool("basic_layer", &m.BasicLayer)
	for _, k := range []struct {
		key string
		dst *int
	}{{"init_planes", &m.InitPlanes}, {"reduction", &m.Reduction}} {
		if o.int(k.key, k.dst) == valid && *k.dst < 1 {
			o.bad(k.key, "must be at least 1, got %d", *k.dst)
		}
	}
	var bwc []int
	if o.ints("base_width_and_cardinality", &bwc, "[4, 32]") == valid && len(bwc) > 0 {
		o.bad("base_width_and_cardinality", "grouped convolutions (ResNeXt) are not supported; remove the key for a ResNet")
	}
	e := o.get("heads")
	if e == nil {
		o.missing("heads", "add heads: [{name: fully_connected, unique_id: default_head, num_classes: N, fork_block: blockS-B, in_plane: P}] on the last block")
		return
	}
	l, ok := d.listVal(e.val, "model.heads", "[{name: fully_connected, ...}]")
	if !ok {
		return
	}
	if len(l) != 1 {
		d.add(e.val.pos, "model.heads", "Cohort builds exactly one head, got %d", len(l))
		return
	}
	ho, ok := d.object("model.heads.0", l[0].pos, l[0])
	if !ok || ho.n == nil {
		if ok {
			d.add(l[0].pos, "model.heads.0", "expected a head mapping like {name: fully_connected, num_classes: 10, ...}")
		}
		return
	}
	h := &m.Head
	var name string
	switch ho.string("name", &name) {
	case absent:
		ho.missing("name", "Cohort has the fully_connected head")
	case valid:
		if name != "fully_connected" {
			ho.bad("name", "head %s is not supported; Cohort has fully_connected", quoteShort(name))
		}
	}
	ho.string("unique_id", &h.UniqueID)
	switch ho.int("num_classes", &h.NumClasses) {
	case absent:
		ho.missing("num_classes", "add num_classes: N")
	case valid:
		if h.NumClasses < 1 {
			ho.bad("num_classes", "must be at least 1, got %d", h.NumClasses)
		}
	}
	m.OutputDim = h.NumClasses
	if ho.string("fork_block", &h.ForkBlock) == absent {
		ho.missing("fork_block", "name the last block, e.g. fork_block: block3-1")
	}
	switch ho.int("in_plane", &h.InPlane) {
	case absent:
		ho.missing("in_plane", "give the last block's channel count")
	case valid:
		if h.InPlane < 1 {
			ho.bad("in_plane", "must be at least 1, got %d", h.InPlane)
		}
	}
	var zeroBias bool
	ho.bool("zero_init_bias", &zeroBias)
	h.ZeroInitBias = zeroBias
	ho.finish("head \"fully_connected\"")
	if len(d.probs) == 0 {
		d.checkHead(ho, m)
	}
}

// checkHead makes sure the head sits on the last block and takes its width,
// the only place Cohort can fork it.
func (d *decoder) checkHead(ho *obj, m *Model) {
	h := m.Head
	last := fmt.Sprintf("block%d-%d", len(m.NumBlocks)-1, m.NumBlocks[len(m.NumBlocks)-1]-1)
	if mt := forkBlock.FindStringSubmatch(h.ForkBlock); mt == nil {
		ho.bad("fork_block", "%s is not a block name; blocks are named block<stage>-<index>, the last one here is %s", quoteShort(h.ForkBlock), last)
		return
	}
	if h.ForkBlock != last {
		ho.bad("fork_block", "%s: Cohort forks the head only from the last block, %s", quoteShort(h.ForkBlock), last)
		return
	}
	if w := m.ResNetWidth(); h.InPlane != w {
		ho.bad("in_plane", "is %d, but %s has %d channels (init_planes %d × reduction %d × 2^%d); set in_plane: %d",
			h.InPlane, last, w, m.InitPlanes, m.Reduction, len(m.NumBlocks)-1, w)
	}
}
