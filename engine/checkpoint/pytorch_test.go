package checkpoint

import (
	"fmt"
	"maps"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const python = "/usr/bin/python3"

// loadScript loads a file with PyTorch's safetensors and prints, per
// tensor in name order, its name, dtype, shape and float64 sum.
const loadScript = `
import sys
from safetensors.torch import load_file
for name, t in sorted(load_file(sys.argv[1]).items()):
    print(name, t.dtype, list(t.shape), repr(float(t.double().sum())))
`

func TestPyTorchLoads(t *testing.T) {
	if err := exec.Command(python, "-c", "import safetensors.torch").Run(); err != nil {
		t.Skipf("%s cannot import safetensors.torch (%v): PyTorch compatibility not checked; "+
			"Debian bookworm has no python3-safetensors package, pip install torch safetensors to run this test", python, err)
	}
	dir := t.TempDir()
	tensors := sampleTensors(1)
	delete(tensors, "model.0.bias") // its -Inf would make the sum uninformative
	path, err := Save(dir, sampleMeta(2, 0), tensors)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "-c", loadScript, strings.TrimSuffix(path, metaExt)+tensorsExt).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	names := slices.Sorted(maps.Keys(tensors))
	if len(lines) != len(names) {
		t.Fatalf("python saw %d tensors, want %d:\n%s", len(lines), len(names), out)
	}
	for i, name := range names {
		tn := tensors[name]
		var sum float64
		for _, v := range tn.Data {
			sum += float64(v)
		}
		shape := strings.ReplaceAll(fmt.Sprint(tn.Shape), " ", ", ")
		prefix := fmt.Sprintf("%s torch.float32 %s ", name, shape)
		got, ok := strings.CutPrefix(lines[i], prefix)
		if !ok {
			t.Errorf("python line %q, want prefix %q", lines[i], prefix)
			continue
		}
		pySum, err := strconv.ParseFloat(got, 64)
		if err != nil || math.Abs(pySum-sum) > 1e-6*max(1, math.Abs(sum)) {
			t.Errorf("%s: python sum %s, Go sum %v", name, got, sum)
		}
	}
}
