package main

import (
	"fmt"
	"os"
	"path/filepath"

	"cohort/engine/profile"
	"cohort/engine/train"
)

// maxShared bounds a string shared by shareString (a path).
const maxShared = 4096

// shareString gives every rank rank 0's s, through a broadcast (strings
// travel as one float32 per byte; a nil comm means one process).
func shareString(comm train.Comm, s string) (string, error) {
	if comm == nil || comm.Size() == 1 {
		return s, nil
	}
	if len(s) > maxShared {
		return "", fmt.Errorf("%d bytes is longer than %d", len(s), maxShared)
	}
	buf := make([]float32, maxShared+1)
	buf[0] = float32(len(s))
	for i := range len(s) {
		buf[1+i] = float32(s[i])
	}
	if err := comm.Broadcast(buf, 0); err != nil {
		return "", err
	}
	b := make([]byte, int(buf[0]))
	for i := range b {
		b[i] = byte(buf[1+i])
	}
	return string(b), nil
}

// writeTraces has every rank write <outDir>/trace/rank-N.json, then rank 0
// merge them into <outDir>/trace.json. Ranks on other nodes write to the
// same path on their own filesystem; rank 0 merges the files it can see and
// names the ones it cannot.
func writeTraces(io streams, comm train.Comm, prof *profile.Recorder, rank int, outDir string) error {
	dir := filepath.Join(outDir, "trace")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("profiler: %w", err)
	}
	if err := prof.WriteFile(filepath.Join(dir, fmt.Sprintf("rank-%d.json", rank))); err != nil {
		return fmt.Errorf("profiler: %w", err)
	}
	world := 1
	if comm != nil {
		if err := comm.Barrier(); err != nil {
			return fmt.Errorf("profiler: wait for every rank's trace: %w", err)
		}
		world = comm.Size()
	}
	if rank != 0 {
		return nil
	}
	var paths, missing []string
	for r := range world {
		p := filepath.Join(dir, fmt.Sprintf("rank-%d.json", r))
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, fmt.Sprint(r))
			continue
		}
		paths = append(paths, p)
	}
	out := filepath.Join(outDir, "trace.json")
	if err := profile.Merge(paths, out); err != nil {
		return fmt.Errorf("profiler: %w", err)
	}
	fmt.Fprintf(io.Out, "profiler: wrote %s (%d ranks; open in chrome://tracing or ui.perfetto.dev)\n", out, len(paths))
	if len(missing) > 0 {
		fmt.Fprintf(io.Err, "cohort: profiler: traces of ranks %v are on their own nodes under %s\n", missing, dir)
	}
	return nil
}
