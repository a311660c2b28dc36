package main

import (
	"fmt"
	"path/filepath"

	"cohort/hooks/plot"
)

// plotCmd redraws a run's PNG curves from its metrics.jsonl, also while
// the run is still going.
type plotCmd struct {
	Dir string `arg:"" placeholder:"OUTPUT-DIR" help:"A run's output folder (holding metrics.jsonl)."`
}

// Run draws and lists the files.
func (c *plotCmd) Run(io streams) error {
	files, err := plot.Draw(filepath.Join(c.Dir, "metrics.jsonl"), c.Dir)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	for _, f := range files {
		fmt.Fprintln(io.Out, f)
	}
	return nil
}
