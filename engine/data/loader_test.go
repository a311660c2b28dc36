package data

import (
	"slices"
	"testing"
)

func augmenting(t *testing.T) *Pipeline {
	t.Helper()
	p, err := ParseTransforms([]map[string]any{
		{"name": "RandomCrop", "size": 6, "padding": 2},
		{"name": "RandomHorizontalFlip"},
		{"name": "Normalize", "mean": []any{0.5, 0.5, 0.5}, "std": []any{0.2, 0.2, 0.2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// collect reads every batch of an epoch from step from.
func collect(t *testing.T, l *Loader, epoch int, idx []int, from int) []Batch {
	t.Helper()
	bs := l.Start(epoch, idx, from)
	defer bs.Close()
	var out []Batch
	for b := bs.Next(); b != nil; b = bs.Next() {
		out = append(out, Batch{X: slices.Clone(b.X), Y: slices.Clone(b.Y)})
	}
	return out
}

func TestLoaderSameBatchesWhateverTheWorkers(t *testing.T) {
	ds, _ := NewSyntheticImage(50, 6, 0.5, 3)
	idx := Sampler{N: 50, Shuffle: true, Seed: 9, World: 1}.Epoch(2)
	var ref []Batch
	for _, workers := range []int{0, 1, 3} {
		l, err := NewLoader(ds, augmenting(t), 9, 8, workers)
		if err != nil {
			t.Fatal(err)
		}
		got := collect(t, l, 2, idx, 0)
		if len(got) != 7 || len(got[6].Y) != 2 {
			t.Fatalf("%d workers: %d batches, last of %d", workers, len(got), len(got[len(got)-1].Y))
		}
		if ref == nil {
			ref = got
			continue
		}
		for i := range ref {
			if !slices.Equal(got[i].X, ref[i].X) || !slices.Equal(got[i].Y, ref[i].Y) {
				t.Fatalf("%d workers: batch %d differs from the synchronous loader's", workers, i)
			}
		}
		// Resuming mid-epoch gives the remaining batches unchanged.
		rest := collect(t, l, 2, idx, 4)
		for i := range rest {
			if !slices.Equal(rest[i].X, ref[4+i].X) {
				t.Fatalf("%d workers: resumed batch %d differs", workers, 4+i)
			}
		}
	}
	// Another epoch draws other augmentations of the same samples.
	l, _ := NewLoader(ds, augmenting(t), 9, 8, 2)
	other := collect(t, l, 3, idx, 0)
	if slices.Equal(other[0].X, ref[0].X) || !slices.Equal(other[0].Y, ref[0].Y) {
		t.Error("epoch 3 repeated epoch 2's augmentation (or changed its labels)")
	}
}

func TestLoaderAugmentationIndependentOfRank(t *testing.T) {
	// Sample j's augmentation depends on (seed, epoch, j) only: two ranks
	// with batch 4 see what one rank sees with batch 8.
	ds, _ := NewSyntheticImage(16, 6, 0.5, 1)
	one, _ := NewLoader(ds, augmenting(t), 5, 8, 2)
	whole := collect(t, one, 0, Sampler{N: 16, Shuffle: true, Seed: 5, World: 1}.Epoch(0), 0)
	size := 3 * 6 * 6
	for rank := range 2 {
		l, _ := NewLoader(ds, augmenting(t), 5, 4, 1)
		part := collect(t, l, 0, Sampler{N: 16, Shuffle: true, Seed: 5, Rank: rank, World: 2}.Epoch(0), 0)
		for step, b := range part {
			for i := range b.Y {
				pos := (step*4+i)*2 + rank // its place in the one-rank order
				want := whole[pos/8].X[pos%8*size : (pos%8+1)*size]
				if !slices.Equal(b.X[i*size:(i+1)*size], want) {
					t.Fatalf("rank %d step %d sample %d differs from the one-rank run", rank, step, i)
				}
			}
		}
	}
}

func TestLoaderCloseMidEpoch(t *testing.T) {
	ds, _ := NewSyntheticImage(100, 6, 0.5, 1)
	l, _ := NewLoader(ds, augmenting(t), 1, 4, 3)
	idx := Sampler{N: 100, World: 1}.Epoch(0)
	for range 3 {
		bs := l.Start(0, idx, 0)
		bs.Next()
		bs.Close() // must not hang with workers blocked on full channels
		bs.Close()
	}
	if got := collect(t, l, 0, idx, 0); len(got) != 25 {
		t.Errorf("after early closes: %d batches, want 25", len(got))
	}
}

func TestSyntheticImage(t *testing.T) {
	ds, err := NewSyntheticImage(400, 5, 0.25, 7)
	if err != nil {
		t.Fatal(err)
	}
	x, y := make([]float32, 400*75), make([]int32, 400)
	idx := Sampler{N: 400, World: 1}.Epoch(0)
	ds.Gather(idx, x, y)
	ones := 0
	for i, c := range y {
		img := x[i*75 : (i+1)*75]
		black := img[(1-c)*25 : (2-c)*25]
		if slices.ContainsFunc(black, func(v float32) bool { return v != 0 }) {
			t.Fatalf("sample %d (class %d): channel %d is not black", i, c, 1-c)
		}
		for _, v := range img {
			if v < 0 || v > 1 || v*255 != float32(int(v*255+0.5)) {
				t.Fatalf("sample %d: pixel %v is not k/255", i, v)
			}
		}
		ones += int(c)
	}
	if ones < 70 || ones > 130 {
		t.Errorf("%d of 400 samples are class 1 with class_ratio 0.25", ones)
	}
	x2, y2 := make([]float32, 75), make([]int32, 1)
	ds.Gather([]int{123}, x2, y2)
	if !slices.Equal(x2, x[123*75:124*75]) || y2[0] != y[123] {
		t.Error("sample 123 differs between gathers")
	}
	if _, err := NewSyntheticImage(0, 5, 0.5, 1); err == nil {
		t.Error("num_samples 0 accepted")
	}
}
