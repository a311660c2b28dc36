package hooks

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"cohort/engine/train"
)

func TestListKeepsRankZeroHooksOffOtherRanks(t *testing.T) {
	hs := Configure(Flags{OutputDir: t.TempDir(), LogFreq: 10, Out: os.Stdout, Err: os.Stderr}, nil)
	zero := NewList(0, hs...).Names()
	one := NewList(1, hs...).Names()
	want := []string{"model_complexity", "logging", "metrics_file", "checkpoint", "plots", "tensorboard"}
	if !slices.Equal(zero, want) {
		t.Fatalf("rank 0 hooks %v, want %v", zero, want)
	}
	if len(one) != 0 {
		t.Fatalf("rank 1 runs %v; every configured hook writes files or the terminal", one)
	}
	noTB := NewList(0, Configure(Flags{NoTensorboard: true}, nil)...).Names()
	if slices.Contains(noTB, "tensorboard") {
		t.Fatal("--no-tensorboard kept the writer")
	}
}

func TestProgressBarOnlyOnATerminal(t *testing.T) {
	withBar := Configure(Flags{ShowProgress: true, Terminal: true, LogFreq: 10}, nil)
	noTTY := Configure(Flags{ShowProgress: true, Terminal: false, LogFreq: 10}, nil)
	has := func(hs []Hook) bool {
		return slices.ContainsFunc(hs, func(h Hook) bool { return h.Name() == "progress_bar" })
	}
	if !has(withBar) || has(noTTY) {
		t.Fatalf("bar on tty %v, without tty %v", has(withBar), has(noTTY))
	}
	for _, h := range withBar {
		if l, ok := h.(*Logging); ok && l.Freq != 0 {
			t.Fatal("step log lines stay on while the bar redraws the line")
		}
	}
}

func TestMetricsFileAppendsOneLinePerPhase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "metrics.jsonl")
	h := &MetricsFile{Path: path}
	for i, p := range []train.Phase{{Index: 0, Train: true}, {Index: 1, Train: false}} {
		s := &train.State{Result: &train.PhaseResult{Phase: p, Values: map[string]float64{"loss": float64(i), "accuracy": 0.5}, Samples: 100, Seconds: 2}}
		if err := h.OnPhaseEnd(s); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[0]["phase"] != "train" || lines[1]["phase"] != "test" ||
		lines[1]["loss"] != 1.0 || lines[0]["samples_per_s"] != 50.0 || lines[0]["epoch"] != 1.0 {
		t.Fatalf("lines %v", lines)
	}
}
