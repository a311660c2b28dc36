package gpu

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"

	"cohort/engine/nn"
)

// mlp builds the CPU engine's MLP the way engine/task does: Flatten, then
// Linear+ReLU per hidden size, then the output Linear, named by index.
func mlp(seed uint64, sizes ...int) *nn.Sequential {
	rng := rand.New(rand.NewPCG(seed, 0x1417))
	layers := []nn.Layer{nn.NewFlatten()}
	for i := 0; i+1 < len(sizes); i++ {
		layers = append(layers, nn.NewLinear(gonum.Implementation{}, rng, fmt.Sprint(len(layers)), sizes[i], sizes[i+1]))
		if i+2 < len(sizes) {
			layers = append(layers, nn.NewReLU())
		}
	}
	m := nn.NewSequential(layers...)
	m.SkipInputGrad = true
	return m
}

func TestPlanLayout(t *testing.T) {
	specs, slots, err := plan(mlp(1, 784, 512, 256, 10))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name   string
		offset int
	}{
		{"5.bias", 0}, {"5.weight", 10}, {"3.bias", 10 + 2560}, {"3.weight", 10 + 2560 + 256},
		{"1.bias", 10 + 2560 + 256 + 131072}, {"1.weight", 10 + 2560 + 256 + 131072 + 512},
	}
	if len(slots) != len(want) {
		t.Fatalf("%d slots, want %d: %+v", len(slots), len(want), slots)
	}
	for i, w := range want {
		if slots[i].Name != w.name || slots[i].Offset != w.offset {
			t.Errorf("slot %d = %s@%d, want %s@%d", i, slots[i].Name, slots[i].Offset, w.name, w.offset)
		}
	}
	if len(specs) != 3 || !specs[0].ReLU || !specs[1].ReLU || specs[2].ReLU {
		t.Errorf("specs: %+v", specs)
	}
	if specs[0].w.Name != "1.weight" || specs[0].w.Len != 784*512 {
		t.Errorf("first layer's weight slot = %+v", specs[0].w)
	}
}

func TestPlanRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lin := func(name string, in, out int) nn.Layer {
		return nn.NewLinear(gonum.Implementation{}, rng, name, in, out)
	}
	drop, err := nn.NewDropout(0.5)
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*nn.Sequential{
		"empty":         nn.NewSequential(nn.NewFlatten()),
		"relu first":    nn.NewSequential(nn.NewReLU(), lin("1", 4, 2)),
		"double relu":   nn.NewSequential(lin("0", 4, 3), nn.NewReLU(), nn.NewReLU(), lin("3", 3, 2)),
		"dropout":       nn.NewSequential(lin("0", 4, 3), drop, lin("2", 3, 2)),
		"size mismatch": nn.NewSequential(lin("0", 4, 3), lin("1", 5, 2)),
	} {
		if _, _, err := plan(m); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
	}
}
