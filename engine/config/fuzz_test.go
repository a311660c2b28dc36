package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// checkOutcome is what both fuzz targets assert: an error wraps ErrInvalid
// and says something; a success renders to YAML and JSON that load back to
// the same Config.
func checkOutcome(t *testing.T, c *Config, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error does not wrap ErrInvalid: %v", err)
		}
		if err.Error() == "" {
			t.Fatal("empty error message")
		}
		return
	}
	y, err := c.YAML()
	if err != nil {
		t.Fatalf("YAML(): %v", err)
	}
	c2, err := Parse("resolved.yaml", y, nil)
	if err != nil {
		t.Fatalf("reloading YAML():\n%s\n%v", y, err)
	}
	if !reflect.DeepEqual(c, c2) {
		t.Fatalf("YAML round trip differs:\n%s", y)
	}
	j, err := c.JSON()
	if err != nil {
		t.Fatalf("JSON(): %v", err)
	}
	c3, err := Parse("resolved.json", j, nil)
	if err != nil {
		t.Fatalf("reloading JSON():\n%s\n%v", j, err)
	}
	if !reflect.DeepEqual(c, c3) {
		t.Fatalf("JSON round trip differs:\n%s", j)
	}
}

func FuzzLoad(f *testing.F) {
	for _, name := range []string{"classy_synthetic_image.json", "classy_old_lr.json", "base.yaml", "layer.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(edited(nil)))
	f.Add([]byte(edited(map[int]string{14: "  lr: {name: multistep, values: [1, 0.1]}"})))
	f.Add([]byte("a: &x [1, 2]\nb: *x\nc: {<<: {d: 1}}\n"))
	f.Add([]byte("num_epochs: 1e3\nname: !!str 12\n---\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, nil)
		checkOutcome(t, c, err)
	})
}

func FuzzOverride(f *testing.F) {
	base := []byte(edited(map[int]string{
		11: "  output_dim: 10\n  hidden_dims: [32, 16]",
		14: "  param_schedulers:\n    lr:\n      name: composite\n      schedulers: [{name: linear, start_value: 0, end_value: 0.1}, {name: cosine, start_value: 0.1, end_value: 0}]\n      lengths: [0.1, 0.9]\nmeters:\n  accuracy: {topk: [1, 5]}",
	}))
	if _, err := Parse("base.yaml", base, nil); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"optimizer.lr=0.1", "+optimizer.momentum=0.9", "++num_epochs=3", "~meters", "~model.hidden_dims=[32,16]",
		"meters.accuracy.topk=[1,5]", "model.hidden_dims.0=8", "x='1'", "num_epochs=", "a.b.c=d",
		"optimizer.param_schedulers.lr.schedulers.1={name: constant, value: 1}", "+dataset.test={name: mnist, batchsize_per_replica: 1}",
		"optimizer.lr=0.1,0.2", "~optimizer.param_schedulers", "model={hidden_dims: [4]}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, override string) {
		c, err := Parse("base.yaml", base, []string{override})
		checkOutcome(t, c, err)
	})
}
