package checkpoint

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"cohort/engine/tensor"
)

// sampleTensors is a small model plus optimizer state, with a 0-dim
// tensor (Adam's step count) and values whose bits must survive exactly.
func sampleTensors(scale float32) map[string]*tensor.Tensor {
	w := tensor.New(3, 4)
	for i := range w.Data {
		w.Data[i] = scale * (float32(i) - 5.5) / 3
	}
	return map[string]*tensor.Tensor{
		"model.0.weight":              w,
		"model.0.bias":                tensor.FromData([]float32{scale, float32(math.Inf(-1)), -0.0}, 3),
		"optimizer.state.0.step":      tensor.FromData([]float32{7 * scale}, []int{}...),
		"optimizer.state.0.exp_avg":   tensor.FromData([]float32{1e-30, math.MaxFloat32, math.SmallestNonzeroFloat32}, 3),
		"optimizer.param_groups.0.lr": tensor.FromData([]float32{0.1}, 1),
	}
}

func sampleMeta(phase, step int) Meta {
	return Meta{
		Version:     "v0.1.0-test",
		Config:      json.RawMessage(`{"name":"classification_task","num_epochs":3}`),
		PhaseIndex:  phase,
		StepInPhase: step,
		Epoch:       phase / 2,
		NumUpdates:  int64(100*phase + step),
		Seed:        1<<63 + 5, // above int64, to prove uint64 survives JSON
		WorldSize:   4,
		RNG:         map[string]uint64{"sampler": 42},
		Meters:      map[string]float64{"loss": 0.25},
		HookState:   map[string]json.RawMessage{"progress": json.RawMessage(`{"seen":3}`)},
	}
}

// assertTensorsEqual compares shapes and float bits (so -0 and NaN count).
func assertTensorsEqual(t *testing.T, got, want map[string]*tensor.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d tensors %v, want %d", len(got), slices.Sorted(maps.Keys(got)), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Fatalf("tensor %q missing", name)
		}
		if !slices.Equal(g.Shape, w.Shape) || g.Shape == nil {
			t.Fatalf("tensor %q shape %v (nil %v), want %v", name, g.Shape, g.Shape == nil, w.Shape)
		}
		if len(g.Data) != len(w.Data) {
			t.Fatalf("tensor %q has %d elements, want %d", name, len(g.Data), len(w.Data))
		}
		for i := range w.Data {
			if math.Float32bits(g.Data[i]) != math.Float32bits(w.Data[i]) {
				t.Fatalf("tensor %q[%d] = %v, want %v", name, i, g.Data[i], w.Data[i])
			}
		}
	}
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// assertNoDebris fails if dir holds a temp file or any file of the
// checkpoint stem.
func assertNoDebris(t *testing.T, dir, stem string) {
	t.Helper()
	for _, name := range listDir(t, dir) {
		if strings.Contains(name, tempMarker) || strings.HasPrefix(name, stem+".") {
			t.Errorf("left behind %s (folder holds %v)", name, listDir(t, dir))
		}
	}
}

// mustSave saves sampleTensors(scale) at (phase, step).
func mustSave(t *testing.T, dir string, phase, step int, scale float32) string {
	t.Helper()
	path, err := Save(dir, sampleMeta(phase, step), sampleTensors(scale))
	if err != nil {
		t.Fatal(err)
	}
	return path
}
