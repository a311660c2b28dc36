package plot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// ErrNoData marks a metrics file without a single complete line.
var ErrNoData = errors.New("plot: no metrics")

// record is the part of a metrics.jsonl line (hooks.MetricsFile) the plots
// use; absent values are nil.
type record struct {
	Phase       string   `json:"phase"`
	Epoch       int      `json:"epoch"`
	Loss        *float64 `json:"loss"`
	Accuracy    *float64 `json:"accuracy"`
	SamplesPerS *float64 `json:"samples_per_s"`
}

// readMetrics parses every line of a metrics file. An unterminated last
// line that does not parse is a line still being written, and is skipped.
func readMetrics(path string) ([]record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	lines := bytes.Split(b, []byte("\n"))
	var recs []record
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			if i == len(lines)-1 {
				break
			}
			return nil, fmt.Errorf("plot %s line %d: %w", path, i+1, err)
		}
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoData, path)
	}
	return recs, nil
}
