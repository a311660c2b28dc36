package checkpoint

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestPrune(t *testing.T) {
	// Five checkpoints by position; damage names one to corrupt, newer one
	// to mark as written by a newer format.
	positions := []position{{1, 0}, {2, 0}, {2, 40}, {3, 0}, {4, 0}}
	tests := []struct {
		name    string
		keep    int
		corrupt []position
		newer   []position
		want    []position
	}{
		{"keep 1", 1, nil, nil, []position{{4, 0}}},
		{"keep 2", 2, nil, nil, []position{{3, 0}, {4, 0}}},
		{"keep all", 5, nil, nil, positions},
		{"keep more than exist", 10, nil, nil, positions},
		{"corrupt ones do not count and go", 2, []position{{4, 0}, {1, 0}}, nil, []position{{2, 40}, {3, 0}}},
		{"newer format stays", 2, nil, []position{{4, 0}}, []position{{2, 40}, {3, 0}, {4, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, p := range positions {
				mustSave(t, dir, p.phase, p.step, 1)
			}
			for _, p := range tt.corrupt {
				flipByte(t, filepath.Join(dir, checkpointName(p)+tensorsExt), -1)
			}
			for _, p := range tt.newer {
				editRecord(t, filepath.Join(dir, checkpointName(p)+metaExt), `"format": 1`, `"format": 2`)
			}
			if err := Prune(dir, tt.keep); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, p := range tt.want {
				want = append(want, checkpointName(p)+metaExt, checkpointName(p)+tensorsExt)
			}
			slices.Sort(want)
			if got := listDir(t, dir); !slices.Equal(got, want) {
				t.Fatalf("folder holds %v, want %v", got, want)
			}
		})
	}
}

// Prune must remove what interrupted saves left, and nothing a save in
// progress or the user still needs.
func TestPruneDebris(t *testing.T) {
	dir := t.TempDir()
	mustSave(t, dir, 1, 0, 1)
	mustSave(t, dir, 2, 0, 1)
	past := time.Now().Add(-time.Hour)
	future := time.Now().Add(time.Hour)
	self := strconv.Itoa(os.Getpid())
	files := []struct {
		name  string
		mtime time.Time
		stays bool
	}{
		{".checkpoint-000003.safetensors.tmp-" + self + "-abc", future, true}, // this process is writing it
		{".checkpoint-000003.json.tmp-" + self + "-abd", past, false},         // ours, but older than the newest commit
		{".checkpoint-000003.safetensors.tmp-999999999-x", future, false},     // no such process
		{"checkpoint-000003.safetensors", future, true},                       // renamed, record about to follow
		{"checkpoint-000000.safetensors", past, false},                        // abandoned long ago
		{"notes.txt", past, true},                                             // not ours
		{"checkpoint-3.json", past, true},                                     // not a name Save writes
		{".checkpoint-000003.safetensors.tmp-x-1", past, true},                // not a name Save writes
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := Prune(dir, 5); err != nil {
		t.Fatal(err)
	}
	want := []string{"checkpoint-000001.json", "checkpoint-000001.safetensors", "checkpoint-000002.json", "checkpoint-000002.safetensors"}
	for _, f := range files {
		if f.stays {
			want = append(want, f.name)
		}
	}
	slices.Sort(want)
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Fatalf("folder holds\n%v\nwant\n%v", got, want)
	}
}

func TestPruneArguments(t *testing.T) {
	if err := Prune(t.TempDir(), 0); err == nil {
		t.Error("Prune keep=0 succeeded; it would delete every checkpoint")
	}
	if err := Prune(filepath.Join(t.TempDir(), "missing"), 1); err != nil {
		t.Errorf("Prune of a missing folder: %v, want nothing to do", err)
	}
}
