package hooks

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"cohort/engine/train"
)

// Progress draws a one-line progress bar (epoch, step/total, loss,
// samples/s, ETA) on a terminal, redrawn at most every Interval:
// ClassyVision's ProgressBarHook.
type Progress struct {
	Base
	Out      io.Writer
	Interval time.Duration
	last     time.Time
	width    int
}

// Name is "progress_bar".
func (*Progress) Name() string { return "progress_bar" }

// Scope is rank 0: one terminal.
func (*Progress) Scope() Scope { return RankZero }

// IsTerminal reports whether f is a character device (a TTY), the only
// place a \r-redrawn bar makes sense.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// OnStep redraws the bar.
func (h *Progress) OnStep(s *train.State) error {
	now := time.Now()
	if s.Step+1 < s.Steps && now.Sub(h.last) < h.Interval {
		return nil
	}
	h.last = now
	elapsed := now.Sub(s.PhaseStart).Seconds()
	done := float64(s.Step+1) / float64(s.Steps)
	batch := s.Task.TrainBatch
	if !s.Phase.Train {
		batch = s.Task.TestBatch
	}
	rate := float64(s.Step+1) * float64(batch) * float64(s.World) / max(elapsed, 1e-9)
	eta := time.Duration(elapsed/done*(1-done)) * time.Second
	const bar = 30
	filled := int(done * bar)
	line := fmt.Sprintf("epoch %d/%d %-5s [%s%s] %d/%d loss %.4f %.0f samples/s ETA %s",
		s.Phase.Epoch+1, s.Task.NumEpochs, s.Phase.Name(), strings.Repeat("=", filled), strings.Repeat(" ", bar-filled),
		s.Step+1, s.Steps, s.Loss, rate, eta.Round(time.Second))
	pad := max(h.width-len(line), 0)
	h.width = len(line)
	_, err := fmt.Fprintf(h.Out, "\r%s%s", line, strings.Repeat(" ", pad))
	return err
}

// OnPhaseEnd ends the bar's line so the phase summary starts clean.
func (h *Progress) OnPhaseEnd(*train.State) error {
	h.width = 0
	_, err := fmt.Fprint(h.Out, "\n")
	return err
}
