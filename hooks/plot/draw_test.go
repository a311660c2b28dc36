package plot

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotutil"
)

// threeEpochs is what hooks.MetricsFile writes for 3 epochs with a test
// phase after epochs 2 and 3.
const threeEpochs = `{"phase":"train","epoch":1,"loss":2.1,"accuracy":0.4,"samples_per_s":24000,"samples":60000}
{"phase":"train","epoch":2,"loss":0.9,"accuracy":0.8,"samples_per_s":25000}
{"phase":"test","epoch":2,"loss":0.7,"accuracy":0.85,"samples_per_s":90000}
{"phase":"train","epoch":3,"loss":0.5,"accuracy":0.9,"samples_per_s":25500}
{"phase":"test","epoch":3,"loss":0.45,"accuracy":0.9,"samples_per_s":91000}
`

func writeMetrics(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// decodePNG checks path is a PNG of the documented size and returns it.
func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != 576 || b.Dy() != 384 {
		t.Fatalf("%s is %v, want 576×384", path, b)
	}
	return img
}

// hasColor reports whether some pixel is close to c: a line or marker
// drawn in it (anti-aliasing blends thin strokes with the background).
func hasColor(img image.Image, c color.Color) bool {
	r0, g0, b0, _ := c.RGBA()
	near := func(a, b uint32) bool { return max(a, b)-min(a, b) < 0x2000 }
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if near(r, r0) && near(g, g0) && near(b, b0) {
				return true
			}
		}
	}
	return false
}

func TestDraw(t *testing.T) {
	train, test := plotutil.Color(0), plotutil.Color(1)
	for _, tc := range []struct {
		name    string
		metrics string
		files   []string
		// lines: for each file, whether the train and test colours appear.
		lines map[string][2]bool
	}{
		{
			"train and test", threeEpochs,
			[]string{"loss.png", "accuracy.png", "throughput.png"},
			map[string][2]bool{"loss.png": {true, true}, "accuracy.png": {true, true}, "throughput.png": {true, false}},
		},
		{
			"partial last line is skipped", threeEpochs + `{"phase":"train","epoch":4,"lo`,
			[]string{"loss.png", "accuracy.png", "throughput.png"},
			map[string][2]bool{"loss.png": {true, true}},
		},
		{
			"no test phase, no accuracy, one epoch", `{"phase":"train","epoch":1,"loss":2.1,"samples_per_s":24000}` + "\n",
			[]string{"loss.png", "throughput.png"},
			map[string][2]bool{"loss.png": {true, false}, "throughput.png": {true, false}},
		},
		{
			"last line without newline still counts", `{"phase":"test","epoch":1,"loss":1}`,
			[]string{"loss.png"},
			map[string][2]bool{"loss.png": {true, false}}, // the first line drawn takes the first colour
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "plots")
			paths, err := Draw(writeMetrics(t, tc.metrics), out)
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) != len(tc.files) {
				t.Fatalf("wrote %v, want %v", paths, tc.files)
			}
			for i, p := range paths {
				if p != filepath.Join(out, tc.files[i]) {
					t.Fatalf("wrote %v, want %v", paths, tc.files)
				}
				img := decodePNG(t, p)
				if want, ok := tc.lines[tc.files[i]]; ok {
					if got := [2]bool{hasColor(img, train), hasColor(img, test)}; got != want {
						t.Errorf("%s: first/second line colours present %v, want %v", tc.files[i], got, want)
					}
				}
			}
			if left, _ := filepath.Glob(filepath.Join(out, ".plot-*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestDrawErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		metrics string
		want    error
		text    string
	}{
		{"empty file", "", ErrNoData, "no metrics"},
		{"only a partial line", `{"phase":"tr`, ErrNoData, "no metrics"},
		{"broken line in the middle", threeEpochs[:60] + "\n" + threeEpochs, nil, "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeMetrics(t, tc.metrics)
			_, err := Draw(path, t.TempDir())
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) ||
				!strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err %v; want %v naming %s and %q", err, tc.want, path, tc.text)
			}
		})
	}
	if _, err := Draw(filepath.Join(t.TempDir(), "missing.jsonl"), t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestEpochTicksAreWholeEpochs(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 2, []float64{0, 1, 2}},
		{0.8, 3.2, []float64{1, 2, 3}},
		{1, 90, []float64{1, 10, 19, 28, 37, 46, 55, 64, 73, 82}},
	} {
		var got []float64
		for _, tk := range epochTicks(tc.lo, tc.hi) {
			got = append(got, tk.Value)
		}
		if !slicesEqual(got, tc.want) {
			t.Errorf("epochTicks(%v, %v) = %v, want %v", tc.lo, tc.hi, got, tc.want)
		}
	}
}

func slicesEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
