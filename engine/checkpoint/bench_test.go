package checkpoint

import (
	"testing"

	"cohort/engine/tensor"
)

// benchTensors is a 64 MiB model (16M parameters).
func benchTensors() map[string]*tensor.Tensor {
	return map[string]*tensor.Tensor{"model.w": tensor.New(4096, 4096)}
}

func BenchmarkSave(b *testing.B) {
	dir := b.TempDir()
	tensors := benchTensors()
	b.SetBytes(4 * 4096 * 4096)
	for b.Loop() {
		if _, err := Save(dir, sampleMeta(1, 0), tensors); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	path, err := Save(dir, sampleMeta(1, 0), benchTensors())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4 * 4096 * 4096)
	for b.Loop() {
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}
