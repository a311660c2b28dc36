package data

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// ErrTransform marks a transform config Cohort cannot run; the message
// names it and the fix.
var ErrTransform = errors.New("data: transform")

// Transform is one step of a sample pipeline over a C×H×W image.
type Transform interface {
	// OutShape is the sample shape the transform makes from in, or an
	// error when it cannot take in.
	OutShape(in []int) ([]int, error)
	// Apply writes the transformed src (shape in) to dst (OutShape(in)).
	// rng is the sample's own generator; only random transforms draw.
	Apply(dst, src []float32, in []int, rng *rand.Rand)
}

// Pipeline is a dataset's transforms, in order.
type Pipeline struct {
	steps []Transform
	names []string
}

// Names lists the transforms, for logs.
func (p *Pipeline) Names() []string { return p.names }

// OutShape is the shape of a sample of shape in after every step.
func (p *Pipeline) OutShape(in []int) ([]int, error) {
	shape := in
	for i, t := range p.steps {
		var err error
		if shape, err = t.OutShape(shape); err != nil {
			return nil, fmt.Errorf("%w %s on %v samples: %v", ErrTransform, p.names[i], shape, err)
		}
	}
	return shape, nil
}

// ParseTransforms builds a pipeline from ClassyVision transform configs:
// ToTensor, Normalize {mean, std}, RandomCrop {size, padding},
// RandomHorizontalFlip {p}, CenterCrop {size}, and apply_transform_to_key
// {key: input, transforms: [...]} around them. Cohort's datasets already
// yield C×H×W float images in [0, 1], which is what ToTensor makes of
// ClassyVision's PIL images, so ToTensor is accepted as a no-op.
func ParseTransforms(specs []map[string]any) (*Pipeline, error) {
	p := &Pipeline{}
	if err := p.add(specs, "transforms"); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Pipeline) add(specs []map[string]any, where string) error {
	for i, spec := range specs {
		at := fmt.Sprintf("%s.%d", where, i)
		name, _ := spec["name"].(string)
		args := argReader{spec: spec, at: at, name: name}
		var t Transform
		switch name {
		case "apply_transform_to_key":
			if key, _ := spec["key"].(string); key != "input" {
				return fmt.Errorf("%w %s: apply_transform_to_key with key %q: Cohort's samples have only the key input", ErrTransform, at, spec["key"])
			}
			inner, err := args.mappings("transforms")
			if err != nil {
				return err
			}
			if err := args.done("key", "transforms"); err != nil {
				return err
			}
			if err := p.add(inner, at+".transforms"); err != nil {
				return err
			}
			continue
		case "ToTensor":
			if err := args.done(); err != nil {
				return err
			}
			continue
		case "Normalize":
			mean, err := args.floats("mean")
			if err != nil {
				return err
			}
			std, err := args.floats("std")
			if err != nil {
				return err
			}
			if len(mean) != len(std) {
				return fmt.Errorf("%w %s: Normalize has %d means and %d stds; give one of each per channel", ErrTransform, at, len(mean), len(std))
			}
			for _, s := range std {
				if s <= 0 {
					return fmt.Errorf("%w %s: Normalize std %g must be positive", ErrTransform, at, s)
				}
			}
			t = normalize{mean: mean, std: std}
			if err := args.done("mean", "std", "inplace"); err != nil {
				return err
			}
		case "RandomCrop", "CenterCrop":
			size, err := args.int("size", -1)
			if err != nil {
				return err
			}
			pad := 0
			if name == "RandomCrop" {
				if pad, err = args.int("padding", 0); err != nil {
					return err
				}
			}
			if size < 1 || pad < 0 {
				return fmt.Errorf("%w %s: %s needs size ≥ 1 and padding ≥ 0 (got %d, %d)", ErrTransform, at, name, size, pad)
			}
			t = crop{size: size, pad: pad, random: name == "RandomCrop"}
			if err := args.done("size", "padding"); err != nil {
				return err
			}
		case "RandomHorizontalFlip":
			prob, err := args.float("p", 0.5)
			if err != nil {
				return err
			}
			if prob < 0 || prob > 1 {
				return fmt.Errorf("%w %s: RandomHorizontalFlip p %g must be in [0, 1]", ErrTransform, at, prob)
			}
			t = hflip{p: prob}
			if err := args.done("p"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w %s: %q is not supported; Cohort has ToTensor, Normalize, RandomCrop, CenterCrop, RandomHorizontalFlip (inside apply_transform_to_key or not); remove it", ErrTransform, at, name)
		}
		p.steps = append(p.steps, t)
		p.names = append(p.names, name)
	}
	return nil
}

// argReader reads a transform's arguments and reports unknown ones.
type argReader struct {
	spec     map[string]any
	at, name string
}

func (a argReader) bad(key, format string, args ...any) error {
	return fmt.Errorf("%w %s: %s %s: %s", ErrTransform, a.at, a.name, key, fmt.Sprintf(format, args...))
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

func (a argReader) float(key string, def float64) (float64, error) {
	v, ok := a.spec[key]
	if !ok || v == nil {
		return def, nil
	}
	f, ok := number(v)
	if !ok {
		return 0, a.bad(key, "expected a number, got %v", v)
	}
	return f, nil
}

// int reads an integer argument; def < 0 makes it required. A one-element
// or square [h, w] size list is accepted, as torchvision does.
func (a argReader) int(key string, def int) (int, error) {
	v, ok := a.spec[key]
	if !ok || v == nil {
		if def < 0 {
			return 0, a.bad(key, "is required")
		}
		return def, nil
	}
	if l, isList := v.([]any); isList && len(l) > 0 && slices.IndexFunc(l, func(x any) bool { return x != l[0] }) < 0 {
		v = l[0]
	}
	if n, isInt := v.(int); isInt {
		return n, nil
	}
	return 0, a.bad(key, "expected an integer (or a square [n, n]), got %v", v)
}

func (a argReader) floats(key string) ([]float64, error) {
	l, ok := a.spec[key].([]any)
	if !ok || len(l) == 0 {
		return nil, a.bad(key, "expected a list of numbers, one per channel, got %v", a.spec[key])
	}
	out := make([]float64, len(l))
	for i, v := range l {
		if out[i], ok = number(v); !ok {
			return nil, a.bad(key, "element %d: expected a number, got %v", i, v)
		}
	}
	return out, nil
}

func (a argReader) mappings(key string) ([]map[string]any, error) {
	l, ok := a.spec[key].([]any)
	if !ok {
		return nil, a.bad(key, "expected a list of transforms, got %v", a.spec[key])
	}
	out := make([]map[string]any, len(l))
	for i, v := range l {
		if out[i], ok = v.(map[string]any); !ok {
			return nil, a.bad(key, "element %d: expected a transform mapping, got %v", i, v)
		}
	}
	return out, nil
}

// done reports any argument besides name and known.
func (a argReader) done(known ...string) error {
	var extra []string
	for k := range a.spec {
		if k != "name" && !slices.Contains(known, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return fmt.Errorf("%w %s: %s does not take %s (it takes %s)", ErrTransform, a.at, a.name, strings.Join(extra, ", "), strings.Join(append([]string{"name"}, known...), ", "))
	}
	return nil
}

// normalize is torchvision's Normalize: (x − mean[c]) / std[c].
type normalize struct{ mean, std []float64 }

func (n normalize) OutShape(in []int) ([]int, error) {
	if len(in) != 3 || in[0] != len(n.mean) {
		return nil, fmt.Errorf("it has %d means and stds, the samples need one per channel", len(n.mean))
	}
	return in, nil
}

func (n normalize) Apply(dst, src []float32, in []int, _ *rand.Rand) {
	plane := in[1] * in[2]
	for c := range in[0] {
		m, inv := float32(n.mean[c]), float32(1/n.std[c])
		for k := c * plane; k < (c+1)*plane; k++ {
			dst[k] = (src[k] - m) * inv
		}
	}
}

// crop is RandomCrop (zero padding on every side, then a uniformly placed
// size×size window) or CenterCrop (the central window; torchvision's
// rounding of the offset).
type crop struct {
	size, pad int
	random    bool
}

func (c crop) OutShape(in []int) ([]int, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("it takes C×H×W images")
	}
	if h, w := in[1]+2*c.pad, in[2]+2*c.pad; c.size > h || c.size > w {
		return nil, fmt.Errorf("size %d is larger than the padded %d×%d image", c.size, h, w)
	}
	return []int{in[0], c.size, c.size}, nil
}

func (c crop) Apply(dst, src []float32, in []int, rng *rand.Rand) {
	ch, h, w := in[0], in[1], in[2]
	var top, left int // in padded coordinates
	if c.random {
		top, left = rng.IntN(h+2*c.pad-c.size+1), rng.IntN(w+2*c.pad-c.size+1)
	} else {
		top, left = int(float64(h-c.size)/2+0.5), int(float64(w-c.size)/2+0.5)
	}
	for k := range ch {
		for i := range c.size {
			row := dst[(k*c.size+i)*c.size : (k*c.size+i+1)*c.size]
			sy := top + i - c.pad
			if sy < 0 || sy >= h {
				clear(row)
				continue
			}
			for j := range row {
				sx := left + j - c.pad
				if sx < 0 || sx >= w {
					row[j] = 0
				} else {
					row[j] = src[(k*h+sy)*w+sx]
				}
			}
		}
	}
}

// hflip mirrors the image left to right with probability p.
type hflip struct{ p float64 }

func (f hflip) OutShape(in []int) ([]int, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("it takes C×H×W images")
	}
	return in, nil
}

func (f hflip) Apply(dst, src []float32, in []int, rng *rand.Rand) {
	if rng.Float64() >= f.p {
		copy(dst, src)
		return
	}
	w := in[2]
	for r := range in[0] * in[1] {
		s, d := src[r*w:(r+1)*w], dst[r*w:(r+1)*w]
		for j := range w {
			d[j] = s[w-1-j]
		}
	}
}
