package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// writeFileAtomic makes dir/base hold exactly what write produces, or leaves
// it untouched: the data goes to a temp file in the same folder
// (.<base>.tmp-<pid>-<rand>, so Prune can tell whose debris it is), which
// is fsynced, closed, renamed over base, and the folder fsynced so the
// rename survives a power cut. On error the temp file is removed. wrap,
// when not nil, sits between write and the file (tests slow or fail it).
func writeFileAtomic(dir, base string, wrap func(io.Writer) io.Writer, write func(io.Writer) error) error {
	f, err := createTemp(dir, base)
	if err != nil {
		return folderError(dir, err)
	}
	tmp := f.Name()
	var w io.Writer = f
	if wrap != nil {
		w = wrap(f)
	}
	err = write(w)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, base))
	}
	if err != nil {
		// Best effort: if even removal fails, Prune recognises the name.
		_ = os.Remove(tmp)
		return folderError(dir, fmt.Errorf("writing %s: %w", base, err))
	}
	return syncDir(dir)
}

// createTemp opens a fresh temp file for base with the umask applied (so
// the checkpoint is as readable as any file the user creates, unlike
// os.CreateTemp's 0600).
func createTemp(dir, base string) (*os.File, error) {
	prefix := "." + base + tempMarker + strconv.Itoa(os.Getpid()) + "-"
	for {
		name := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return folderError(dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some filesystems (certain FUSE and network mounts) cannot fsync a
	// directory; their renames are as durable as they get.
	if err != nil && !errors.Is(err, syscall.EINVAL) {
		return folderError(dir, fmt.Errorf("fsync: %w", err))
	}
	return nil
}

// folderError names the checkpoint folder and says what the user can do
// about the common causes, keeping err in the chain.
func folderError(dir string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("checkpoint folder %s is not writable: %w (fix its permissions or point the checkpoint folder elsewhere)", dir, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("checkpoint folder %s is out of space: %w (free space there or keep fewer checkpoints)", dir, err)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("checkpoint folder %s is not a directory: %w (point the checkpoint folder at a directory)", dir, err)
	default:
		return fmt.Errorf("checkpoint folder %s: %w", dir, err)
	}
}
