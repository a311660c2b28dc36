// Package plot draws a run's training curves (loss, accuracy, throughput
// per epoch) from its metrics.jsonl as PNG files, for `cohort plot` and the
// end of a run.
package plot

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Width and Height are the size of every PNG: 576×384 pixels at
// gonum/plot's 96 DPI.
const (
	Width  = 6 * vg.Inch
	Height = 4 * vg.Inch
)

// chart is one PNG: a line per phase through value(record)·scale by epoch.
type chart struct {
	file, title, yLabel string
	phases              []string
	value               func(record) *float64
	scale               float64
}

func charts() []chart {
	return []chart{
		{"loss.png", "Loss", "loss", []string{"train", "test"}, func(r record) *float64 { return r.Loss }, 1},
		{"accuracy.png", "Top-1 accuracy", "accuracy (%)", []string{"train", "test"}, func(r record) *float64 { return r.Accuracy }, 100},
		{"throughput.png", "Training throughput", "samples/s", []string{"train"}, func(r record) *float64 { return r.SamplesPerS }, 1},
	}
}

// Draw reads metricsPath (metrics.jsonl) and writes loss.png,
// accuracy.png and throughput.png into outDir, skipping a chart without
// data (no test phase gives one line, no accuracy meter no accuracy.png).
// It returns the files written. A line still being written is ignored, so
// it may run during training.
func Draw(metricsPath, outDir string) ([]string, error) {
	recs, err := readMetrics(metricsPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	var written []string
	for _, c := range charts() {
		p, ok, err := c.plot(recs)
		if err != nil {
			return written, fmt.Errorf("plot %s: %w", c.file, err)
		}
		if !ok {
			continue
		}
		path := filepath.Join(outDir, c.file)
		if err := savePNG(p, path); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// plot builds the chart; ok is false when no record has its value.
func (c chart) plot(recs []record) (*plot.Plot, bool, error) {
	p := plot.New()
	p.Title.Text = c.title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = c.yLabel
	p.X.Tick.Marker = plot.TickerFunc(epochTicks)
	p.Legend.Top = true
	p.Legend.XOffs = -vg.Millimeter // keep the line samples off the edge
	var lines []any
	for _, phase := range c.phases {
		if xys := c.series(recs, phase); len(xys) > 0 {
			lines = append(lines, phase, xys)
		}
	}
	if len(lines) == 0 {
		return nil, false, nil
	}
	return p, true, plotutil.AddLinePoints(p, lines...)
}

// series is phase's values by epoch; a later line for an epoch (a resumed
// run repeating it) replaces an earlier one.
func (c chart) series(recs []record, phase string) plotter.XYs {
	byEpoch := map[int]float64{}
	for _, r := range recs {
		if v := c.value(r); r.Phase == phase && v != nil {
			byEpoch[r.Epoch] = *v * c.scale
		}
	}
	xys := make(plotter.XYs, 0, len(byEpoch))
	for e, v := range byEpoch {
		xys = append(xys, plotter.XY{X: float64(e), Y: v})
	}
	slices.SortFunc(xys, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
	return xys
}

// epochTicks labels whole epochs only, about ten at most.
func epochTicks(lo, hi float64) []plot.Tick {
	first, last := math.Ceil(lo), math.Floor(hi)
	step := max(1, math.Ceil((last-first)/10))
	var ticks []plot.Tick
	for v := first; v <= last; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.Itoa(int(v))})
	}
	return ticks
}

// savePNG replaces path atomically, so a viewer never shows half a file.
func savePNG(p *plot.Plot, path string) error {
	wt, err := p.WriterTo(Width, Height, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".plot-*.png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // after a successful rename this finds nothing
	if _, err := wt.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
