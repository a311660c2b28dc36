package data

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// integral turns JSON's whole numbers into ints, as the config loader
// gives them.
func integral(v any) any {
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<31 {
			return int(v)
		}
	case []any:
		for i := range v {
			v[i] = integral(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = integral(v[k])
		}
	}
	return v
}

// FuzzTransforms feeds transform configs (JSON) and image sizes: a config
// is either refused with ErrTransform, or it builds a pipeline whose
// OutShape refuses the sample shape with ErrTransform, or whose batches
// come out of the loader with that shape and no panic.
func FuzzTransforms(f *testing.F) {
	f.Add([]byte(`[{"name":"apply_transform_to_key","key":"input","transforms":[{"name":"ToTensor"},{"name":"Normalize","mean":[0.5,0.5,0.5],"std":[0.2,0.2,0.2]}]}]`), uint8(6), uint8(3))
	f.Add([]byte(`[{"name":"RandomCrop","size":4,"padding":2},{"name":"RandomHorizontalFlip","p":0.5}]`), uint8(5), uint8(4))
	f.Add([]byte(`[{"name":"CenterCrop","size":[3,3]}]`), uint8(2), uint8(1))
	f.Add([]byte(`[{"name":"RandomCrop","size":9}]`), uint8(4), uint8(2))
	f.Fuzz(func(t *testing.T, spec []byte, crop, n uint8) {
		var specs []map[string]any
		if json.Unmarshal(spec, &specs) != nil {
			return
		}
		for _, s := range specs {
			integral(s)
		}
		p, err := ParseTransforms(specs)
		if err != nil {
			if !errors.Is(err, ErrTransform) {
				t.Fatalf("error %v does not wrap ErrTransform", err)
			}
			return
		}
		side := int(crop%16) + 1
		ds, err := NewSyntheticImage(int(n%8)+1, side, 0.5, 1)
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.OutShape(ds.SampleShape())
		if err != nil {
			if !errors.Is(err, ErrTransform) {
				t.Fatalf("error %v does not wrap ErrTransform", err)
			}
			return
		}
		if numel(out) > 1<<16 {
			return // a huge crop of padding: valid, but not worth the memory here
		}
		l, err := NewLoader(ds, p, 7, 3, 1)
		if err != nil {
			t.Fatal(err)
		}
		bs := l.Start(0, Sampler{N: ds.Len(), World: 1}.Epoch(0), 0)
		defer bs.Close()
		for b := bs.Next(); b != nil; b = bs.Next() {
			if len(b.X) != len(b.Y)*numel(out) {
				t.Fatalf("batch of %d values for %d samples of %v", len(b.X), len(b.Y), out)
			}
		}
	})
}
