// Package checkpoint is Cohort's checkpoint format and its storage. A
// checkpoint is two files in a folder: checkpoint-<phase>[-step<N>].safetensors
// with every tensor (model weights under "model.", optimizer state under
// "optimizer.") in a layout PyTorch's safetensors loads, and a .json with
// the resume metadata and the tensors file's size and SHA-256. Both are
// written through temp files and renames, the .json last, so the .json is
// the commit record: a process killed mid-write leaves at most debris that
// Latest ignores and Prune removes, never a checkpoint that loads wrong.
package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cohort/engine/tensor"
)

// Checkpoint is a loaded, verified checkpoint.
type Checkpoint struct {
	Path    string // the .json commit record
	Meta    Meta
	Tensors map[string]*tensor.Tensor
}

// producerMetadata goes into every tensors file; "format":"pt" is what
// safetensors.torch expects of files meant for PyTorch.
func producerMetadata() map[string]string {
	return map[string]string{"format": "pt", "producer": "cohort"}
}

// Save writes tensors and meta as the checkpoint for (meta.PhaseIndex,
// meta.StepInPhase) in dir, creating dir if needed, and returns the path of
// its .json. It fills in meta's Format, TensorsFile, SHA256, Size and, when
// zero, CreatedAt. An existing checkpoint of the same name is replaced; it
// stops counting as a checkpoint before its tensors are overwritten. On
// error no file with a checkpoint's final name is left half-written.
func Save(dir string, meta Meta, tensors map[string]*tensor.Tensor) (string, error) {
	return save(dir, meta, tensors, nil)
}

// save is Save with wrap interposed on every file write (see writeFileAtomic).
func save(dir string, meta Meta, tensors map[string]*tensor.Tensor, wrap func(io.Writer) io.Writer) (string, error) {
	pos := position{meta.PhaseIndex, meta.StepInPhase}
	if pos.phase < 0 || pos.step < 0 {
		return "", fmt.Errorf("checkpoint: negative position phase %d step %d", pos.phase, pos.step)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", folderError(dir, err)
	}
	name := checkpointName(pos)
	meta.Format = FormatVersion
	meta.TensorsFile = name + tensorsExt
	if meta.CreatedAt.IsZero() {
		meta.CreatedAt = time.Now().UTC()
	}
	metaPath := filepath.Join(dir, name+metaExt)
	tensorsPath := filepath.Join(dir, meta.TensorsFile)
	// Fail before writing gigabytes if the record cannot be encoded (a NaN
	// meter, an invalid Config); only sha256 and size change below.
	if _, err := encodeRecord(meta); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", metaPath, err)
	}
	if err := os.Remove(metaPath); err == nil {
		if err := syncDir(dir); err != nil {
			return "", err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", folderError(dir, err)
	}

	sum := sha256.New()
	var size countingWriter
	err := writeFileAtomic(dir, meta.TensorsFile, wrap, func(w io.Writer) error {
		return WriteSafetensors(io.MultiWriter(w, sum, &size), tensors, producerMetadata())
	})
	if err != nil {
		return "", err
	}
	meta.SHA256 = hex.EncodeToString(sum.Sum(nil))
	meta.Size = int64(size)
	record, err := encodeRecord(meta)
	if err == nil {
		err = writeFileAtomic(dir, name+metaExt, wrap, func(w io.Writer) error {
			_, err := w.Write(record)
			return err
		})
	}
	if err != nil {
		// Without its record the tensors file is not a checkpoint; do not
		// leave it looking like one.
		_ = os.Remove(tensorsPath)
		return "", err
	}
	return metaPath, nil
}

// encodeRecord is the .json's content: indented, since people read it.
func encodeRecord(meta Meta) ([]byte, error) {
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return append(b, '\n'), nil
}

// countingWriter counts the bytes written through it.
type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// Load reads the checkpoint whose .json (or .safetensors) is path, checks
// the tensors file's size and SHA-256 against the record, and decodes it.
// Errors name the file at fault and wrap ErrNotFound (no .json),
// ErrCorrupt or ErrFormat.
func Load(path string) (*Checkpoint, error) {
	metaPath, meta, f, err := openVerified(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tensors, _, err := ReadSafetensors(f, meta.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return &Checkpoint{Path: metaPath, Meta: meta, Tensors: tensors}, nil
}

// openVerified reads the commit record for path and returns it with its
// tensors file open, once size and checksum match.
func openVerified(path string) (metaPath string, meta Meta, f *os.File, err error) {
	metaPath = path
	if stem, ok := strings.CutSuffix(path, tensorsExt); ok {
		metaPath = stem + metaExt
	}
	kind, pos, _ := classify(filepath.Base(metaPath))
	if kind != metaFile {
		return "", Meta{}, nil, fmt.Errorf("checkpoint: %s is not a checkpoint file name (checkpoint-NNNNNN[-stepN].json)", path)
	}
	data, err := os.ReadFile(metaPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", Meta{}, nil, fmt.Errorf("%w: %s has no commit record %s", ErrNotFound, path, metaPath)
	}
	if err != nil {
		return "", Meta{}, nil, fmt.Errorf("checkpoint %s: %w", metaPath, err)
	}
	if meta, err = decodeMeta(data); err != nil {
		return "", Meta{}, nil, fmt.Errorf("%s: %w", metaPath, err)
	}
	if got := (position{meta.PhaseIndex, meta.StepInPhase}); got != pos {
		return "", Meta{}, nil, fmt.Errorf("%s: %w: records phase %d step %d, its name says phase %d step %d", metaPath, ErrCorrupt, got.phase, got.step, pos.phase, pos.step)
	}
	tensorsPath := filepath.Join(filepath.Dir(metaPath), meta.TensorsFile)
	if f, err = os.Open(tensorsPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: tensors file missing", ErrCorrupt)
		}
		return "", Meta{}, nil, fmt.Errorf("%s: %w", tensorsPath, err)
	}
	if err := verify(f, meta); err != nil {
		f.Close()
		return "", Meta{}, nil, fmt.Errorf("%s: %w", tensorsPath, err)
	}
	return metaPath, meta, f, nil
}

// verify checks f's size and SHA-256 against the commit record.
func verify(f *os.File, meta Meta) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != meta.Size {
		return fmt.Errorf("%w: size mismatch: expected %d bytes, got %d", ErrCorrupt, meta.Size, st.Size())
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, meta.Size)); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, meta.SHA256) {
		return fmt.Errorf("%w: checksum mismatch: expected %s, got %s", ErrCorrupt, meta.SHA256, got)
	}
	return nil
}
