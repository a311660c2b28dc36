package plot

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"cohort/engine/train"
)

var _ train.Hooks = (*Hook)(nil)

func TestHookDrawsAtEnd(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	h := &Hook{MetricsPath: writeMetrics(t, threeEpochs), Dir: dir, Out: &out}
	if err := h.OnEnd(&train.State{}); err != nil {
		t.Fatal(err)
	}
	decodePNG(t, filepath.Join(dir, "loss.png"))
	if !strings.Contains(out.String(), "throughput.png") {
		t.Fatalf("output %q", out.String())
	}
}

func TestHookWithoutMetricsIsQuiet(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "missing.jsonl"), writeMetrics(t, "")} {
		var out bytes.Buffer
		if err := (&Hook{MetricsPath: path, Dir: dir, Out: &out}).OnPreempt(&train.State{}); err != nil || out.Len() != 0 {
			t.Fatalf("%s: err %v, output %q", path, err, out.String())
		}
	}
}
