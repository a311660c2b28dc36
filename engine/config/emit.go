package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// YAML renders the resolved config (defaults filled in, names normalised)
// as YAML. Loading it again gives the same Config.
func (c *Config) YAML() ([]byte, error) {
	t, err := c.tree()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	emitYAMLMap(&b, t, 0, false)
	return b.Bytes(), nil
}

// JSON renders the resolved config as indented JSON, the generic tree kept
// in checkpoints; Parse reads it back into the same Config.
func (c *Config) JSON() ([]byte, error) {
	t, err := c.tree()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := emitJSON(&b, t); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// builder helpers: an ordered tree without positions.
type mb struct{ n *node }

func newMB() mb { return mb{newMap(pos{})} }

func (m mb) put(k string, v *node) mb { m.n.m.set(k, pos{}, v); return m }
func (m mb) str(k, v string) mb       { return m.put(k, &node{kind: stringKind, s: v}) }
func (m mb) int(k string, v int) mb   { return m.put(k, &node{kind: intKind, i: int64(v)}) }
func (m mb) flt(k string, v float64) mb {
	return m.put(k, &node{kind: floatKind, f: v})
}
func (m mb) bool(k string, v bool) mb { return m.put(k, &node{kind: boolKind, b: v}) }
func (m mb) ints(k string, v []int) mb {
	l := &node{kind: listKind, list: []*node{}}
	for _, x := range v {
		l.list = append(l.list, &node{kind: intKind, i: int64(x)})
	}
	return m.put(k, l)
}
func (m mb) flts(k string, v []float64) mb {
	l := &node{kind: listKind, list: []*node{}}
	for _, x := range v {
		l.list = append(l.list, &node{kind: floatKind, f: x})
	}
	return m.put(k, l)
}

// fromAny converts plain Go values (as in Dataset.Transforms) to a tree.
func fromAny(v any) (*node, error) {
	switch x := v.(type) {
	case nil:
		return &node{kind: nullKind}, nil
	case bool:
		return &node{kind: boolKind, b: x}, nil
	case int:
		return &node{kind: intKind, i: int64(x)}, nil
	case int64:
		return &node{kind: intKind, i: x}, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("config: non-finite number %v in transforms", x)
		}
		return &node{kind: floatKind, f: x}, nil
	case string:
		return &node{kind: stringKind, s: x}, nil
	case []any:
		l := &node{kind: listKind, list: []*node{}}
		for _, y := range x {
			n, err := fromAny(y)
			if err != nil {
				return nil, err
			}
			l.list = append(l.list, n)
		}
		return l, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		m := newMap(pos{})
		for _, k := range keys {
			n, err := fromAny(x[k])
			if err != nil {
				return nil, err
			}
			m.m.set(k, pos{}, n)
		}
		return m, nil
	}
	return nil, fmt.Errorf("config: cannot render %T in transforms", v)
}

// tree builds the canonical generic tree of c, in Cohort's spellings.
func (c *Config) tree() (*node, error) {
	t := newMB().str("name", c.Name).int("num_epochs", c.NumEpochs).
		int("test_phase_period", c.TestPhasePeriod).
		int("simulated_global_batchsize", c.SimulatedGlobalBatchsize).
		flt("clip_grad_norm", c.ClipGradNorm)
	t.put("loss", newMB().str("name", c.Loss.Name).n)
	ds := newMB()
	for _, ph := range []struct {
		k string
		d *Dataset
	}{{"train", c.Dataset.Train}, {"test", c.Dataset.Test}} {
		if ph.d == nil {
			continue
		}
		n, err := datasetTree(ph.d)
		if err != nil {
			return nil, err
		}
		ds.put(ph.k, n)
	}
	t.put("dataset", ds.n)
	t.put("model", modelTree(c.Model))
	o := c.Optimizer
	ob := newMB().str("name", o.Name)
	if lr := o.LR; lr.Name == "constant" && lr.UpdateInterval == defaultInterval["constant"] {
		ob.flt("lr", lr.Value)
	} else {
		ob.put("param_schedulers", newMB().put("lr", scheduleTree(lr)).n)
	}
	switch o.Name {
	case "sgd":
		ob.flt("momentum", o.Momentum).bool("nesterov", o.Nesterov)
	default:
		ob.flts("betas", o.Betas[:]).flt("eps", o.Eps)
	}
	ob.flt("weight_decay", o.WeightDecay)
	t.put("optimizer", ob.n)
	mt := newMB()
	if a := c.Meters.Accuracy; a != nil {
		mt.put("accuracy", newMB().ints("topk", a.TopK).n)
	}
	t.put("meters", mt.n)
	mode := "disabled"
	if c.BatchNormSync {
		mode = "pytorch"
	}
	t.str("batch_norm_sync_mode", mode)
	return t.n, nil
}

func modelTree(m Model) *node {
	mm := newMB().str("name", m.Name)
	if m.Name == "resnet" {
		h := m.Head
		head := newMB().str("name", "fully_connected").str("unique_id", h.UniqueID).int("num_classes", h.NumClasses).
			str("fork_block", h.ForkBlock).int("in_plane", h.InPlane).bool("zero_init_bias", h.ZeroInitBias)
		return mm.ints("num_blocks", m.NumBlocks).bool("small_input", m.SmallInput).bool("basic_layer", m.BasicLayer).
			int("init_planes", m.InitPlanes).int("reduction", m.Reduction).bool("zero_init_bn_residuals", m.ZeroInitBNResiduals).
			put("heads", &node{kind: listKind, list: []*node{head.n}}).n
	}
	if m.InputDim != 0 { // 0: from the dataset, said by leaving the key out
		mm.int("input_dim", m.InputDim)
	}
	if m.OutputDim != 0 {
		mm.int("output_dim", m.OutputDim)
	}
	if m.Name == "lenet" {
		return mm.n
	}
	return mm.ints("hidden_dims", m.HiddenDims).flt("dropout", m.Dropout).bool("first_dropout", m.FirstDropout).
		bool("use_batchnorm", m.UseBatchnorm).bool("first_batchnorm", m.FirstBatchnorm).n
}

func datasetTree(d *Dataset) (*node, error) {
	b := newMB().str("name", d.Name).int("batchsize_per_replica", d.BatchsizePerReplica).
		bool("use_shuffle", d.UseShuffle).int("num_samples", d.NumSamples).int("num_workers", d.NumWorkers)
	if d.Name == "mnist" {
		b.str("root", d.Root)
	} else {
		b.int("num_classes", d.NumClasses).int("crop_size", d.CropSize).flt("class_ratio", d.ClassRatio).int("seed", d.Seed)
	}
	tl := &node{kind: listKind, list: []*node{}}
	for _, t := range d.Transforms {
		n, err := fromAny(t)
		if err != nil {
			return nil, err
		}
		tl.list = append(tl.list, n)
	}
	b.put("transforms", tl)
	return b.n, nil
}

func scheduleTree(s Schedule) *node {
	b := newMB().str("name", s.Name)
	switch s.Name {
	case "constant":
		b.flt("value", s.Value)
	case "step":
		b.flts("values", s.Values)
	case "multistep":
		b.flts("values", s.Values).ints("milestones", s.Milestones)
	case "cosine", "linear":
		b.flt("start_value", s.StartValue).flt("end_value", s.EndValue)
	case "composite":
		l := &node{kind: listKind, list: []*node{}}
		for _, x := range s.Schedulers {
			l.list = append(l.list, scheduleTree(x))
		}
		b.put("schedulers", l).flts("lengths", s.Lengths)
		il := &node{kind: listKind, list: []*node{}}
		for _, x := range s.IntervalScaling {
			il.list = append(il.list, &node{kind: stringKind, s: x})
		}
		b.put("interval_scaling", il)
	}
	b.int("num_epochs", s.NumEpochs).str("update_interval", s.UpdateInterval)
	return b.n
}

// ---- writers ----

func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

var plainString = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./-]*$`)
var yamlWords = regexp.MustCompile(`(?i)^(true|false|yes|no|on|off|y|n|null|nan|inf|infinity)$`)

// yamlString writes s plain when that reads back as the same string, else
// double-quoted (JSON escapes are valid YAML escapes).
func yamlString(s string) string {
	if plainString.MatchString(s) && !yamlWords.MatchString(s) {
		return s
	}
	return jsonString(s)
}

func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

func scalarText(n *node) string {
	switch n.kind {
	case nullKind:
		return "null"
	case boolKind:
		return strconv.FormatBool(n.b)
	case intKind:
		return strconv.FormatInt(n.i, 10)
	case floatKind:
		return formatFloat(n.f)
	default:
		return yamlString(n.s)
	}
}

func isScalar(n *node) bool { return n.kind != listKind && n.kind != mapKind }

// emitYAMLMap writes the entries of a mapping in block style at the given
// indent; with firstInline the first entry follows text already on the line
// (a list's "- ").
func emitYAMLMap(b *bytes.Buffer, n *node, indent int, firstInline bool) {
	for i, e := range n.m.entries {
		if i > 0 || !firstInline {
			b.WriteString(strings.Repeat(" ", indent))
		}
		b.WriteString(yamlString(e.key))
		b.WriteByte(':')
		emitYAMLValue(b, e.val, indent)
	}
}

// emitYAMLValue writes the value after "key:" or "-" of something at
// indent, ending the line.
func emitYAMLValue(b *bytes.Buffer, v *node, indent int) {
	switch {
	case isScalar(v):
		b.WriteByte(' ')
		b.WriteString(scalarText(v))
		b.WriteByte('\n')
	case v.kind == mapKind && len(v.m.entries) == 0:
		b.WriteString(" {}\n")
	case v.kind == listKind && allScalar(v.list):
		b.WriteString(" [")
		for i, x := range v.list {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(scalarText(x))
		}
		b.WriteString("]\n")
	case v.kind == mapKind:
		b.WriteByte('\n')
		emitYAMLMap(b, v, indent+2, false)
	default: // a list holding collections
		b.WriteByte('\n')
		for _, x := range v.list {
			b.WriteString(strings.Repeat(" ", indent+2))
			b.WriteByte('-')
			if x.kind == mapKind && len(x.m.entries) > 0 {
				b.WriteByte(' ')
				emitYAMLMap(b, x, indent+4, true)
			} else {
				emitYAMLValue(b, x, indent+2)
			}
		}
	}
}

func allScalar(l []*node) bool {
	for _, x := range l {
		if !isScalar(x) {
			return false
		}
	}
	return true
}

func emitJSON(b *bytes.Buffer, n *node) error {
	switch n.kind {
	case listKind:
		b.WriteByte('[')
		for i, x := range n.list {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := emitJSON(b, x); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case mapKind:
		b.WriteByte('{')
		for i, e := range n.m.entries {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonString(e.key))
			b.WriteByte(':')
			if err := emitJSON(b, e.val); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case floatKind:
		if math.IsNaN(n.f) || math.IsInf(n.f, 0) {
			return fmt.Errorf("config: non-finite number %v has no JSON form", n.f)
		}
		b.WriteString(formatFloat(n.f))
	case stringKind:
		b.WriteString(jsonString(n.s))
	default:
		b.WriteString(scalarText(n))
	}
	return nil
}
