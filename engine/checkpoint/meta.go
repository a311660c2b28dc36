package checkpoint

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"
)

// FormatVersion is the checkpoint format this package writes in
// Meta.Format; Load refuses larger numbers with ErrFormat.
const FormatVersion = 1

// Meta is what a resume needs besides the tensors. Stored as the
// checkpoint's .json, it is also the commit record: it carries the size and
// SHA-256 of the tensors file, and a checkpoint exists only once it does.
type Meta struct {
	Version     string                     `json:"version"`       // cohort version that wrote it
	Format      int                        `json:"format"`        // this package's format number (FormatVersion)
	Config      json.RawMessage            `json:"config"`        // resolved task config
	PhaseIndex  int                        `json:"phase_index"`   // index of the next phase to run
	StepInPhase int                        `json:"step_in_phase"` // steps already done in that phase (0 at a boundary)
	Epoch       int                        `json:"epoch"`         // train epochs completed
	NumUpdates  int64                      `json:"num_updates"`
	Seed        uint64                     `json:"seed"`
	WorldSize   int                        `json:"world_size"`
	RNG         map[string]uint64          `json:"rng,omitempty"`
	Meters      map[string]float64         `json:"meters,omitempty"`
	HookState   map[string]json.RawMessage `json:"hook_state,omitempty"`
	CreatedAt   time.Time                  `json:"created_at"`
	TensorsFile string                     `json:"tensors_file"` // base name of the .safetensors
	SHA256      string                     `json:"sha256"`       // hex SHA-256 of the whole .safetensors
	Size        int64                      `json:"size"`         // bytes of the .safetensors
}

// decodeMeta parses and sanity-checks a commit record. Errors wrap
// ErrFormat for a newer format and ErrCorrupt for anything else.
func decodeMeta(data []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil {
		return Meta{}, fmt.Errorf("%w: metadata: %w", ErrCorrupt, err)
	}
	sum, err := hex.DecodeString(m.SHA256)
	switch {
	case m.Format > FormatVersion:
		return Meta{}, fmt.Errorf("%w: written by cohort %q in format %d, this build reads up to %d; resume with a newer cohort", ErrFormat, m.Version, m.Format, FormatVersion)
	case m.Format < 1:
		return Meta{}, fmt.Errorf("%w: metadata: format %d is not a cohort checkpoint format", ErrCorrupt, m.Format)
	case m.PhaseIndex < 0 || m.StepInPhase < 0:
		return Meta{}, fmt.Errorf("%w: metadata: negative position phase %d step %d", ErrCorrupt, m.PhaseIndex, m.StepInPhase)
	case err != nil || len(sum) != 32:
		return Meta{}, fmt.Errorf("%w: metadata: sha256 %q is not 64 hex digits", ErrCorrupt, m.SHA256)
	case m.Size < 8:
		return Meta{}, fmt.Errorf("%w: metadata: size %d is too small for a safetensors file", ErrCorrupt, m.Size)
	case m.TensorsFile != filepath.Base(m.TensorsFile) || m.TensorsFile == "." || m.TensorsFile == "..":
		// Only a base name, so a crafted record cannot point outside its folder.
		return Meta{}, fmt.Errorf("%w: metadata: tensors_file %q is not a file name", ErrCorrupt, m.TensorsFile)
	}
	return m, nil
}
