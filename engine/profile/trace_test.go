package profile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMergeKeepsEveryRank(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for rank := range 2 {
		r := New(rank, 100)
		r.Begin("forward", CatForward).End()
		r.Begin("bucket 0", CatAllReduce).End()
		p := filepath.Join(dir, fmt.Sprintf("rank%d.json", rank))
		if err := r.WriteFile(p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out := filepath.Join(dir, "timeline.json")
	if err := Merge(paths, out); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	spans := map[int]int{}
	procs := map[int]any{}
	for _, e := range evs {
		if e.Ph == "X" {
			spans[e.Pid]++
		}
		if e.Name == "process_name" {
			procs[e.Pid] = e.Args["name"]
		}
	}
	if spans[0] != 2 || spans[1] != 2 || procs[0] != "rank 0" || procs[1] != "rank 1" {
		t.Fatalf("spans per pid %v, processes %v", spans, procs)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".trace-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestMergeErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	notTrace := filepath.Join(dir, "metrics.json")
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(notTrace, []byte(`{"loss":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, []byte(`{"traceEvents":[{"name":`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want error
	}{
		{notTrace, ErrNotTrace},
		{filepath.Join(dir, "missing.json"), fs.ErrNotExist},
		{broken, nil},
	} {
		err := Merge([]string{tc.path}, filepath.Join(dir, "out.json"))
		if err == nil || !strings.Contains(err.Error(), tc.path) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Merge(%s): %v, want %v naming the file", tc.path, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.json")); !os.IsNotExist(err) {
		t.Fatal("a failed merge wrote its output")
	}
}
