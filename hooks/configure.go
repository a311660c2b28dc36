package hooks

import (
	"encoding/json"
	"io"
	"path/filepath"
	"time"

	"cohort/engine/train"
	"cohort/hooks/plot"
	"cohort/hooks/tensorboard"
)

// Flags are the command-line settings hooks depend on (classy_train's
// args), filled by the CLI.
type Flags struct {
	// OutputDir holds metrics.jsonl (and, by default, checkpoints/).
	OutputDir        string
	CheckpointFolder string
	CheckpointPeriod int
	KeepCheckpoints  int
	LogFreq          int
	// ShowProgress asks for a bar; it is drawn only when Terminal is true.
	ShowProgress bool
	Terminal     bool
	// NoTensorboard turns the TensorBoard event writer off.
	NoTensorboard bool
	Version       string
	Out, Err      io.Writer
}

// Configure is classy_train's configure_hooks: the hooks a run gets from
// its flags and resolved config, in the order they run.
func Configure(f Flags, resolvedConfig json.RawMessage) []Hook {
	showBar := f.ShowProgress && f.Terminal
	logFreq := f.LogFreq
	if showBar {
		logFreq = 0 // step lines would break the bar; phase summaries stay
	}
	hs := []Hook{&Complexity{Out: f.Out}}
	if showBar {
		// Before Logging, so the bar's line is ended before a summary.
		hs = append(hs, &Progress{Out: f.Err, Interval: 100 * time.Millisecond})
	}
	metrics := filepath.Join(f.OutputDir, "metrics.jsonl")
	hs = append(hs,
		&Logging{Out: f.Out, Freq: logFreq},
		&MetricsFile{Path: metrics},
		// The checkpoint before anything optional: on preemption it is
		// what must get written in the time left.
		&Checkpoint{Folder: f.CheckpointFolder, Period: f.CheckpointPeriod, Keep: f.KeepCheckpoints,
			Version: f.Version, Config: resolvedConfig, Out: f.Out},
		rankZero("plots", &plot.Hook{MetricsPath: metrics, Dir: f.OutputDir, Out: f.Out}),
	)
	if !f.NoTensorboard {
		hs = append(hs, rankZero("tensorboard", &tensorboard.Hook{OutputDir: f.OutputDir, LogFreq: f.LogFreq}))
	}
	return hs
}

// rankZeroHook gives a hook from a subpackage (which cannot import this
// package's Scope) a name and the rank-0 scope.
type rankZeroHook struct {
	train.Hooks
	name string
}

func rankZero(name string, h train.Hooks) Hook { return rankZeroHook{Hooks: h, name: name} }

// Name is the wrapped hook's name.
func (h rankZeroHook) Name() string { return h.name }

// Scope is rank 0: these hooks write files.
func (rankZeroHook) Scope() Scope { return RankZero }
