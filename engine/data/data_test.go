package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSamplerShardsAreDisjointAndCoverPaddedLikeTorch(t *testing.T) {
	for _, tc := range []struct{ n, world int }{{10, 1}, {10, 2}, {10, 3}, {7, 4}, {60000, 2}} {
		seen := map[int]int{}
		per := Sampler{N: tc.n, World: tc.world}.PerRank()
		for r := range tc.world {
			idx := Sampler{N: tc.n, Shuffle: true, Seed: 3, Rank: r, World: tc.world}.Epoch(1)
			if len(idx) != per {
				t.Fatalf("n=%d world=%d rank %d: %d indices, want %d", tc.n, tc.world, r, len(idx), per)
			}
			for _, i := range idx {
				seen[i]++
			}
		}
		if len(seen) != tc.n {
			t.Errorf("n=%d world=%d: %d distinct samples, want all %d", tc.n, tc.world, len(seen), tc.n)
		}
		if pad := per*tc.world - tc.n; pad >= tc.world {
			t.Errorf("n=%d world=%d: padded by %d, more than world-1", tc.n, tc.world, pad)
		}
	}
}

// W ranks with batch B must see exactly the samples of one rank with batch
// W·B, step by step: that is what makes data parallelism equal to a bigger batch.
func TestSamplerWorldSplitsTheSingleRankBatch(t *testing.T) {
	const n, world, batch = 1000, 2, 64
	single := Sampler{N: n, Shuffle: true, Seed: 9, World: 1}.Epoch(4)
	var ranks [world][]int
	for r := range world {
		ranks[r] = Sampler{N: n, Shuffle: true, Seed: 9, Rank: r, World: world}.Epoch(4)
	}
	for step := 0; step*batch < len(ranks[0]); step++ {
		var union []int
		for r := range world {
			union = append(union, ranks[r][step*batch:min((step+1)*batch, len(ranks[r]))]...)
		}
		want := slices.Clone(single[step*batch*world : min((step+1)*batch*world, n)])
		slices.Sort(union)
		slices.Sort(want)
		if !slices.Equal(union, want) {
			t.Fatalf("step %d: ranks' union differs from the single-rank batch", step)
		}
	}
}

func TestSamplerShuffleDependsOnEpochOnly(t *testing.T) {
	s := Sampler{N: 100, Shuffle: true, Seed: 1, World: 1}
	if !slices.Equal(s.Epoch(2), s.Epoch(2)) {
		t.Fatal("same epoch gave different orders")
	}
	if slices.Equal(s.Epoch(2), s.Epoch(3)) {
		t.Fatal("epochs 2 and 3 gave the same order")
	}
	if got := (Sampler{N: 5, World: 1}).Epoch(0); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("unshuffled order %v", got)
	}
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func writeMNIST(t *testing.T, dir string, images, labels []byte) {
	for _, name := range []string{mnistTrainImages, mnistTestImages} {
		os.WriteFile(filepath.Join(dir, name), gz(t, images), 0o644)
	}
	for _, name := range []string{mnistTrainLabels, mnistTestLabels} {
		os.WriteFile(filepath.Join(dir, name), gz(t, labels), 0o644)
	}
}

func TestLoadMNISTDecodesAndScales(t *testing.T) {
	dir := t.TempDir()
	img := []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 255, 51, 102}
	lbl := []byte{0, 0, 8, 1, 0, 0, 0, 2, 7, 3}
	writeMNIST(t, dir, img, lbl)
	d, err := LoadMNIST(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	x, y := make([]float32, 4), make([]int32, 2)
	d.Gather([]int{1, 0}, x, y)
	if !slices.Equal(x, []float32{0.2, 0.4, 0, 1}) || !slices.Equal(y, []int32{3, 7}) {
		t.Fatalf("gathered %v %v", x, y)
	}
	if !slices.Equal(d.SampleShape(), []int{1, 1, 2}) || d.Len() != 2 {
		t.Fatalf("shape %v len %d", d.SampleShape(), d.Len())
	}
}

func TestLoadMNISTErrorsNameTheFileAndTheFix(t *testing.T) {
	good := []byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9}
	for _, tc := range []struct {
		name         string
		images, lbls []byte
		want         string
	}{
		{"missing", nil, nil, "make data"},
		{"bad magic", []byte{1, 2, 3, 4}, []byte{0, 0, 8, 1, 0, 0, 0, 1, 1}, "IDX magic"},
		{"truncated", good[:len(good)-1], []byte{0, 0, 8, 1, 0, 0, 0, 1, 1}, "bytes follow"},
		{"count mismatch", good, []byte{0, 0, 8, 1, 0, 0, 0, 2, 1, 1}, "labels"},
		{"bad label", good, []byte{0, 0, 8, 1, 0, 0, 0, 1, 12}, "not a digit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.images != nil {
				writeMNIST(t, dir, tc.images, tc.lbls)
			}
			_, err := LoadMNIST(dir, false)
			if !errors.Is(err, ErrDataset) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrDataset mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSyntheticIsSeededAndLearnable(t *testing.T) {
	a, _ := NewSynthetic(64, 4, []int{1, 2, 2}, 0, 5, 0)
	b, _ := NewSynthetic(64, 4, []int{1, 2, 2}, 0, 5, 0)
	if !slices.Equal(a.x, b.x) || !slices.Equal(a.y, b.y) {
		t.Fatal("same seed, different data")
	}
	c, _ := NewSynthetic(64, 4, []int{1, 2, 2}, 0, 6, 0)
	if slices.Equal(a.x, c.x) {
		t.Fatal("different seeds, same data")
	}
	if _, err := NewSynthetic(0, 4, []int{1}, 0, 1, 0); !errors.Is(err, ErrDataset) {
		t.Fatalf("n=0: %v", err)
	}
	bin, _ := NewSynthetic(1000, 10, []int{3, 2, 2}, 0.25, 1, 0)
	ones := 0
	for _, y := range bin.y {
		ones += int(y)
	}
	if bin.NumClasses() != 2 || ones < 200 || ones > 300 {
		t.Fatalf("class_ratio 0.25: %d classes, %d of 1000 are class 1", bin.NumClasses(), ones)
	}
	if Limit(a, 10).Len() != 10 || Limit(a, 0).Len() != 64 || Limit(a, 100).Len() != 64 {
		t.Fatal("Limit")
	}
}
