package checkpoint

import (
	"fmt"
	"strconv"
	"strings"
)

const (
	tensorsExt = ".safetensors"
	metaExt    = ".json"
	namePrefix = "checkpoint-"
	tempMarker = ".tmp-"
)

// position orders checkpoints: later phase first, then more steps into it.
type position struct{ phase, step int }

func (p position) newerThan(q position) bool {
	return p.phase > q.phase || p.phase == q.phase && p.step > q.step
}

// checkpointName is the file stem for a position: checkpoint-000003 at a
// phase boundary, checkpoint-000003-step120 mid-phase.
func checkpointName(p position) string {
	if p.step == 0 {
		return fmt.Sprintf("%s%06d", namePrefix, p.phase)
	}
	return fmt.Sprintf("%s%06d-step%d", namePrefix, p.phase, p.step)
}

// parseName is checkpointName's inverse. Only canonical names parse, so
// every file this package touches is one it could have written.
func parseName(stem string) (position, bool) {
	rest, ok := strings.CutPrefix(stem, namePrefix)
	if !ok {
		return position{}, false
	}
	phase, step, hasStep := strings.Cut(rest, "-step")
	var p position
	var err error
	if p.phase, err = strconv.Atoi(phase); err != nil {
		return position{}, false
	}
	if hasStep {
		if p.step, err = strconv.Atoi(step); err != nil {
			return position{}, false
		}
	}
	return p, p.phase >= 0 && p.step >= 0 && checkpointName(p) == stem
}

// fileKind classifies a directory entry by name.
type fileKind int

const (
	otherFile   fileKind = iota
	metaFile             // checkpoint-….json
	tensorsFile          // checkpoint-….safetensors
	tempFile             // .checkpoint-….{json,safetensors}.tmp-<pid>-<rand>
)

// classify returns what name is, the checkpoint position it belongs to,
// and for temp files the id of the process that created it.
func classify(name string) (kind fileKind, p position, pid int) {
	if hidden, ok := strings.CutPrefix(name, "."); ok {
		i := strings.LastIndex(hidden, tempMarker)
		if i < 0 {
			return otherFile, position{}, 0
		}
		pidStr, _, ok := strings.Cut(hidden[i+len(tempMarker):], "-")
		pid, err := strconv.Atoi(pidStr)
		if k, p, _ := classify(hidden[:i]); ok && err == nil && (k == metaFile || k == tensorsFile) {
			return tempFile, p, pid
		}
		return otherFile, position{}, 0
	}
	for _, c := range []struct {
		ext  string
		kind fileKind
	}{{metaExt, metaFile}, {tensorsExt, tensorsFile}} {
		if stem, ok := strings.CutSuffix(name, c.ext); ok {
			if p, ok := parseName(stem); ok {
				return c.kind, p, 0
			}
		}
	}
	return otherFile, position{}, 0
}
