package plot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"cohort/engine/train"
)

// Hook draws the curves from MetricsPath into Dir when the run ends or is
// preempted. Run it on rank 0 only, after the hook that writes the metrics
// file.
//
// It implements train.Hooks but not hooks.Hook, because package hooks,
// which picks the hooks for a run, imports this one.
type Hook struct {
	MetricsPath, Dir string
	// Out, if set, gets a line naming the files written.
	Out io.Writer
}

// Name is "plots".
func (*Hook) Name() string { return "plots" }

// OnStart does nothing.
func (*Hook) OnStart(*train.State) error { return nil }

// OnPhaseStart does nothing.
func (*Hook) OnPhaseStart(*train.State) error { return nil }

// OnStep does nothing.
func (*Hook) OnStep(*train.State) error { return nil }

// OnPhaseEnd does nothing: drawing takes tens of ms per chart, once is enough.
func (*Hook) OnPhaseEnd(*train.State) error { return nil }

// OnPreempt draws the curves so far.
func (h *Hook) OnPreempt(*train.State) error { return h.draw() }

// OnEnd draws the curves.
func (h *Hook) OnEnd(*train.State) error { return h.draw() }

func (h *Hook) draw() error {
	paths, err := Draw(h.MetricsPath, h.Dir)
	if errors.Is(err, ErrNoData) || errors.Is(err, fs.ErrNotExist) {
		return nil // no phase has finished, in this run or before: nothing to draw
	}
	if err != nil || h.Out == nil {
		return err
	}
	_, err = fmt.Fprintf(h.Out, "plots: wrote %s\n", strings.Join(paths, ", "))
	return err
}
