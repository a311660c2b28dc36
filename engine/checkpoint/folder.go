package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// folder is what a checkpoint folder holds, by kind.
type folder struct {
	records []record      // committed checkpoints' .json, newest position first
	tensors []fs.DirEntry // .safetensors with no .json beside them
	temps   []tempEntry
	// newestCommit is the latest modification time among the .json files:
	// any debris older than it belongs to a save that will never finish.
	newestCommit time.Time
}

type record struct {
	path string
	pos  position
}

type tempEntry struct {
	entry fs.DirEntry
	pid   int
}

// scan lists dir. A missing dir is ErrNotFound: no checkpoint yet.
func scan(dir string) (folder, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return folder{}, fmt.Errorf("checkpoint folder %s: %w", dir, ErrNotFound)
	}
	if err != nil {
		return folder{}, folderError(dir, err)
	}
	var f folder
	committed := map[position]bool{}
	var tensors []fs.DirEntry
	for _, e := range entries {
		kind, pos, pid := classify(e.Name())
		switch kind {
		case metaFile:
			f.records = append(f.records, record{filepath.Join(dir, e.Name()), pos})
			committed[pos] = true
			if info, err := e.Info(); err == nil && info.ModTime().After(f.newestCommit) {
				f.newestCommit = info.ModTime()
			}
		case tensorsFile:
			tensors = append(tensors, e)
		case tempFile:
			f.temps = append(f.temps, tempEntry{e, pid})
		}
	}
	for _, e := range tensors {
		if _, pos, _ := classify(e.Name()); !committed[pos] {
			f.tensors = append(f.tensors, e)
		}
	}
	slices.SortFunc(f.records, func(a, b record) int {
		switch {
		case a.pos.newerThan(b.pos):
			return -1
		case b.pos.newerThan(a.pos):
			return 1
		}
		return 0
	})
	return f, nil
}

// Latest loads the newest checkpoint in dir, by (PhaseIndex, StepInPhase),
// that verifies. Each newer one that does not is reported in skipped, so
// the caller can say why it resumes from an older one. With none valid
// (or no dir), err wraps ErrNotFound.
func Latest(dir string) (ck *Checkpoint, skipped []error, err error) {
	f, err := scan(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range f.records {
		ck, err := Load(r.path)
		if err == nil {
			return ck, skipped, nil
		}
		skipped = append(skipped, err)
	}
	return nil, skipped, fmt.Errorf("checkpoint folder %s: %w (%d unusable)", dir, ErrNotFound, len(skipped))
}

// Prune keeps the newest keep checkpoints in dir that verify and removes
// the older ones and every corrupt one. Checkpoints it cannot judge (a
// newer format, a read error) are left alone unless older than the kept
// ones. It also removes debris of interrupted saves: temp files whose
// writer is gone or that predate the newest commit, and .safetensors
// without a .json that predate it (a newer one may be a save in progress).
func Prune(dir string, keep int) error {
	if keep < 1 {
		return fmt.Errorf("checkpoint: keep must be at least 1, got %d", keep)
	}
	f, err := scan(dir)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	remove := func(name string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	valid := 0
	for _, r := range f.records {
		if valid < keep {
			_, _, file, err := openVerified(r.path)
			if err == nil {
				file.Close()
				valid++
				continue
			}
			if !errors.Is(err, ErrCorrupt) {
				continue
			}
		}
		// The record goes first: once it is gone the checkpoint no longer
		// exists, and a crash here leaves only an orphan for the next Prune.
		stem := checkpointName(r.pos)
		remove(stem + metaExt)
		remove(stem + tensorsExt)
	}
	for _, e := range f.tensors {
		if f.stale(e) {
			remove(e.Name())
		}
	}
	for _, t := range f.temps {
		if f.stale(t.entry) || !processAlive(t.pid) {
			remove(t.entry.Name())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return folderError(dir, fmt.Errorf("prune: %w", err))
	}
	return syncDir(dir)
}

// stale reports whether e was last written before the newest commit.
func (f folder) stale(e fs.DirEntry) bool {
	info, err := e.Info()
	return err == nil && info.ModTime().Before(f.newestCommit)
}

// processAlive reports whether pid names a live process on this host; a
// temp file whose writer is gone can never be completed.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
