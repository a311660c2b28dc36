package data

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// image returns a C×H×W image whose value at (c, y, x) is c*100 + y*10 + x.
func image(c, h, w int) []float32 {
	img := make([]float32, c*h*w)
	for k := range c {
		for y := range h {
			for x := range w {
				img[(k*h+y)*w+x] = float32(k*100 + y*10 + x)
			}
		}
	}
	return img
}

func TestParseTransformsClassyVisionForm(t *testing.T) {
	p, err := ParseTransforms([]map[string]any{{
		"name": "apply_transform_to_key", "key": "input",
		"transforms": []any{
			map[string]any{"name": "ToTensor"},
			map[string]any{"name": "RandomCrop", "size": 4, "padding": 1},
			map[string]any{"name": "RandomHorizontalFlip"},
			map[string]any{"name": "Normalize", "mean": []any{0.5, 0.5, 0.5}, "std": []any{0.25, 0.5, 1}},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"RandomCrop", "RandomHorizontalFlip", "Normalize"}; !slices.Equal(p.Names(), want) {
		t.Errorf("names %v, want %v", p.Names(), want)
	}
	if shape, err := p.OutShape([]int{3, 4, 4}); err != nil || !slices.Equal(shape, []int{3, 4, 4}) {
		t.Errorf("out shape %v, %v", shape, err)
	}
	if _, err := p.OutShape([]int{1, 4, 4}); !errors.Is(err, ErrTransform) || !strings.Contains(err.Error(), "one per channel") {
		t.Errorf("1-channel samples through a 3-channel Normalize: %v", err)
	}
}

func TestParseTransformsRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec map[string]any
		want string
	}{
		{"unknown", map[string]any{"name": "ColorJitter"}, `transforms.0: "ColorJitter" is not supported`},
		{"other key", map[string]any{"name": "apply_transform_to_key", "key": "target", "transforms": []any{}}, `key "target"`},
		{"mean/std", map[string]any{"name": "Normalize", "mean": []any{0.5}, "std": []any{0.5, 0.5}}, "1 means and 2 stds"},
		{"zero std", map[string]any{"name": "Normalize", "mean": []any{0.5}, "std": []any{0}}, "must be positive"},
		{"crop size", map[string]any{"name": "RandomCrop"}, "RandomCrop size: is required"},
		{"crop typo", map[string]any{"name": "RandomCrop", "size": 4, "pading": 2}, "does not take pading"},
		{"flip p", map[string]any{"name": "RandomHorizontalFlip", "p": 2}, "must be in [0, 1]"},
		{"nested unknown", map[string]any{"name": "apply_transform_to_key", "key": "input", "transforms": []any{map[string]any{"name": "Resize"}}}, `transforms.0.transforms.0: "Resize"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTransforms([]map[string]any{tt.spec})
			if !errors.Is(err, ErrTransform) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an ErrTransform containing %q", err, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	src := image(2, 1, 2)
	dst := make([]float32, len(src))
	normalize{mean: []float64{1, 100}, std: []float64{2, 4}}.Apply(dst, src, []int{2, 1, 2}, nil)
	if want := []float32{-0.5, 0, 0, 0.25}; !slices.Equal(dst, want) {
		t.Errorf("got %v, want %v", dst, want)
	}
}

func TestCrop(t *testing.T) {
	src := image(1, 3, 3)
	dst := make([]float32, 4)
	crop{size: 2}.Apply(dst, src, []int{1, 3, 3}, nil)
	// torchvision rounds the offset (3-2)/2 = 0.5 up to 1.
	if want := []float32{11, 12, 21, 22}; !slices.Equal(dst, want) {
		t.Errorf("center crop %v, want %v", dst, want)
	}
	// RandomCrop with padding 1 and size 3 on a 3×3 image: every window of
	// the zero-padded 5×5 image must turn up, and only those.
	seen := map[[2]int]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]float32, 9)
	for range 500 {
		crop{size: 3, pad: 1, random: true}.Apply(out, src, []int{1, 3, 3}, rng)
		found := false
		for top := range 3 {
			for left := range 3 {
				want := make([]float32, 9)
				for i := range 3 {
					for j := range 3 {
						if y, x := top+i-1, left+j-1; y >= 0 && y < 3 && x >= 0 && x < 3 {
							want[i*3+j] = src[y*3+x]
						}
					}
				}
				if slices.Equal(out, want) {
					seen[[2]int{top, left}], found = true, true
				}
			}
		}
		if !found {
			t.Fatalf("crop %v is no window of the padded image", out)
		}
	}
	if len(seen) != 9 {
		t.Errorf("saw %d of the 9 windows in 500 draws", len(seen))
	}
}

func TestHorizontalFlip(t *testing.T) {
	src := image(2, 2, 3)
	dst := make([]float32, len(src))
	hflip{p: 1}.Apply(dst, src, []int{2, 2, 3}, rand.New(rand.NewPCG(1, 1)))
	if want := []float32{2, 1, 0, 12, 11, 10, 102, 101, 100, 112, 111, 110}; !slices.Equal(dst, want) {
		t.Errorf("got %v, want %v", dst, want)
	}
	hflip{p: 0}.Apply(dst, src, []int{2, 2, 3}, rand.New(rand.NewPCG(1, 1)))
	if !slices.Equal(dst, src) {
		t.Errorf("p=0 changed the image: %v", dst)
	}
}
