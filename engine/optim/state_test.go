package optim

import (
	"errors"
	"math"
	"strings"
	"testing"

	"cohort/engine/nn"
	"cohort/engine/tensor"
)

// makers builds each optimizer kind over the given params.
var makers = map[string]func([]*nn.Param) (Optimizer, error){
	"sgd-momentum": func(p []*nn.Param) (Optimizer, error) { return NewSGD(p, 0.9, 1e-4, false) },
	"sgd-nesterov": func(p []*nn.Param) (Optimizer, error) { return NewSGD(p, 0.9, 0, true) },
	"adam":         func(p []*nn.Param) (Optimizer, error) { return NewAdam(p, 0.9, 0.999, 1e-8, 1e-4) },
	"adamw":        func(p []*nn.Param) (Optimizer, error) { return NewAdamW(p, 0.9, 0.999, 1e-8, 0.05) },
}

// threeParams returns params of several shapes with fixed start values.
func threeParams() []*nn.Param {
	w := &nn.Param{Name: "0.weight", Value: tensor.New(2, 3), Grad: tensor.New(2, 3)}
	for i := range w.Value.Data {
		w.Value.Data[i] = 0.1*float32(i) - 0.25
	}
	return []*nn.Param{w, newParam("0.bias", []float32{0.5, -0.5}, make([]float32, 2)), newParam("2.weight", []float32{1.5}, make([]float32, 1))}
}

func run(t *testing.T, opt Optimizer, params []*nn.Param, from, to int) {
	t.Helper()
	for step := from; step <= to; step++ {
		setGrads(params, step)
		opt.Step(0.05)
	}
}

// TestStateResumeIsBitIdentical checks that stopping after 3 steps,
// restoring State into a fresh optimizer over copied weights and running 2
// more steps gives exactly the weights of 5 uninterrupted steps.
func TestStateResumeIsBitIdentical(t *testing.T) {
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			straight := threeParams()
			opt, err := mk(straight)
			if err != nil {
				t.Fatal(err)
			}
			run(t, opt, straight, 1, 5)

			first := threeParams()
			optA, _ := mk(first)
			run(t, optA, first, 1, 3)
			state := optA.State()

			resumed := threeParams()
			for i, p := range resumed {
				copy(p.Value.Data, first[i].Value.Data)
			}
			optB, _ := mk(resumed)
			if err := optB.LoadState(state); err != nil {
				t.Fatal(err)
			}
			run(t, optB, resumed, 4, 5)
			for i, p := range resumed {
				for j, v := range p.Value.Data {
					if want := straight[i].Value.Data[j]; math.Float32bits(v) != math.Float32bits(want) {
						t.Errorf("%s[%d] = %v after resume, %v uninterrupted", p.Name, j, v, want)
					}
				}
			}
		})
	}
}

// TestStateIsACopy checks that a taken State does not change as training
// goes on, so a checkpoint writer may serialise it concurrently.
func TestStateIsACopy(t *testing.T) {
	for name, mk := range makers {
		params := threeParams()
		opt, _ := mk(params)
		run(t, opt, params, 1, 2)
		state := opt.State()
		before := map[string][]float32{}
		for k, v := range state {
			before[k] = append([]float32(nil), v.Data...)
		}
		run(t, opt, params, 3, 3)
		for k, v := range state {
			for i := range v.Data {
				if v.Data[i] != before[k][i] {
					t.Errorf("%s: State()[%q] changed after a later Step", name, k)
					break
				}
			}
		}
	}
}

func TestStateNames(t *testing.T) {
	want := map[string][]string{
		"sgd-momentum": {"0.weight.momentum_buffer", "0.bias.momentum_buffer", "2.weight.momentum_buffer"},
		"adam":         {"0.weight.exp_avg", "0.weight.exp_avg_sq", "0.bias.exp_avg", "0.bias.exp_avg_sq", "2.weight.exp_avg", "2.weight.exp_avg_sq", "step"},
	}
	for name, keys := range want {
		opt, _ := makers[name](threeParams())
		state := opt.State()
		if len(state) != len(keys) {
			t.Errorf("%s: State has %d tensors, want %d", name, len(state), len(keys))
		}
		for _, k := range keys {
			if _, ok := state[k]; !ok {
				t.Errorf("%s: State lacks %q", name, k)
			}
		}
	}
	plain, _ := NewSGD(threeParams(), 0, 0, false)
	if n := len(plain.State()); n != 0 {
		t.Errorf("SGD without momentum has %d state tensors, want 0", n)
	}
}

// TestStepCounterEncoding checks the two-digit step encoding beyond the
// 2^24 steps a single float32 can count.
func TestStepCounterEncoding(t *testing.T) {
	for _, step := range []int64{0, 1, stepRadix - 1, stepRadix, stepRadix + 3, 1<<40 + 12345} {
		got, err := decodeStep(encodeStep(step))
		if err != nil || got != step {
			t.Errorf("decodeStep(encodeStep(%d)) = %d, %v", step, got, err)
		}
	}
	opt, _ := NewAdam(threeParams(), 0.9, 0.999, 1e-8, 0)
	state := opt.State()
	state[stepKey] = encodeStep(3*stepRadix + 5)
	if err := opt.LoadState(state); err != nil {
		t.Fatal(err)
	}
	if opt.step != 3*stepRadix+5 {
		t.Errorf("step after LoadState = %d, want %d", opt.step, 3*stepRadix+5)
	}
	if d := opt.State()[stepKey].Data; d[0] != 5 || d[1] != 3 {
		t.Errorf("State step = %v, want [5 3]", d)
	}
}

func TestLoadStateRejects(t *testing.T) {
	cases := []struct {
		name, kind, mention string
		edit                func(map[string]*tensor.Tensor)
	}{
		{"missing buffer", "sgd-momentum", `"0.bias.momentum_buffer" missing`,
			func(s map[string]*tensor.Tensor) { delete(s, "0.bias.momentum_buffer") }},
		{"nil buffer", "adam", `"0.bias.exp_avg" missing`,
			func(s map[string]*tensor.Tensor) { s["0.bias.exp_avg"] = nil }},
		{"wrong shape", "adam", `"0.weight.exp_avg_sq" has shape [6]`,
			func(s map[string]*tensor.Tensor) { s["0.weight.exp_avg_sq"] = tensor.New(6) }},
		{"unexpected tensor", "adamw", `unexpected tensor "1.weight.exp_avg"`,
			func(s map[string]*tensor.Tensor) { s["1.weight.exp_avg"] = tensor.New(1) }},
		{"missing step", "adam", `"step" missing`,
			func(s map[string]*tensor.Tensor) { delete(s, stepKey) }},
		{"fractional step", "adam", `"step" digit 0`,
			func(s map[string]*tensor.Tensor) { s[stepKey] = tensor.FromData([]float32{1.5, 0}, 2) }},
		{"step digit overflow", "adamw", `"step" digit 1`,
			func(s map[string]*tensor.Tensor) { s[stepKey] = tensor.FromData([]float32{0, stepRadix}, 2) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := threeParams()
			opt, _ := makers[c.kind](params)
			run(t, opt, params, 1, 2)
			before := opt.State()
			bad := opt.State()
			// Make every valid tensor differ so a partial load would show.
			for _, v := range bad {
				for i := range v.Data {
					v.Data[i] += 1
				}
			}
			c.edit(bad)
			err := opt.LoadState(bad)
			if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("err = %v, want ErrState mentioning %s", err, c.mention)
			}
			for k, v := range opt.State() {
				for i := range v.Data {
					if v.Data[i] != before[k].Data[i] {
						t.Fatalf("failed LoadState changed %q", k)
					}
				}
			}
		})
	}
}
