package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cohort/engine/profile"
	"cohort/hooks/tensorboard"
)

// A 2-rank run with --profiler: one merged Chrome trace with both ranks'
// spans for every phase of a step, all-reduce overlapping backward when
// buckets are small; TensorBoard events and PNG plots from rank 0.
func TestProfilerTensorBoardAndPlots(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "synth.yaml", synthConfig)
	out := filepath.Join(dir, "run")
	cmd, stdout, stderr := launcher(t, dir, nil, "--nproc-per-node", "2", "--", "train", "-c", cfg, "num_epochs=2",
		"--output-dir", out, "--profiler", "--bucket-mb", "0.01", "--log-freq", "10", "--threads", "2")
	if code := exitCodeOf(t, cmd, 2*time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	events, err := profile.ReadFile(filepath.Join(out, "trace.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]map[string]bool{0: {}, 1: {}}
	var spans []profile.Event
	for _, e := range events {
		if e.Ph != "X" {
			continue
		}
		if e.Name == "" || e.Dur < 0 || e.TS <= 0 {
			t.Fatalf("span without name, start or duration: %+v", e)
		}
		seen[e.Pid][e.Cat] = true
		spans = append(spans, e)
	}
	for rank, cats := range seen {
		for _, want := range []string{profile.CatData, profile.CatForward, profile.CatBackward, profile.CatAllReduce, profile.CatOptimizer} {
			if !cats[want] {
				t.Errorf("rank %d has no %s span", rank, want)
			}
		}
	}
	if !seen[0][profile.CatCheckpoint] {
		t.Error("rank 0 has no checkpoint span")
	}
	if !profile.Overlaps(spans, profile.CatAllReduce, profile.CatBackward) {
		t.Error("no all-reduce span overlaps a backward span with 10 KiB buckets")
	}

	tb, _ := filepath.Glob(filepath.Join(out, "tensorboard", "*tfevents*"))
	if len(tb) != 1 {
		t.Fatalf("tensorboard files %v", tb)
	}
	evs, err := tensorboard.ReadEvents(tb[0])
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]bool{}
	for _, e := range evs {
		for _, v := range e.Values {
			tags[v.Tag] = true
		}
	}
	for _, want := range []string{"train/loss_step", "train/lr", "train/loss", "test/accuracy", "train/samples_per_s"} {
		if !tags[want] {
			t.Errorf("event file lacks %s (has %v)", want, tags)
		}
	}
	for _, name := range []string{"loss.png", "accuracy.png", "throughput.png"} {
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		f.Close()
	}
	if strings.Contains(stdout.String(), "[rank 1] plots") {
		t.Error("rank 1 drew plots")
	}
}
