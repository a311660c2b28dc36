package checkpoint

import "errors"

var (
	// ErrNotFound means there is no committed checkpoint where one was looked
	// for (no folder, no .json, or none that verified).
	ErrNotFound = errors.New("checkpoint: not found")
	// ErrCorrupt means a file does not hold what its commit record or the
	// safetensors layout promises: size or checksum mismatch, a bad header,
	// a missing tensors file.
	ErrCorrupt = errors.New("checkpoint: corrupt")
	// ErrFormat means the checkpoint was written with a newer format number
	// than this build reads.
	ErrFormat = errors.New("checkpoint: unsupported format")
	// ErrInvalidTensor means a tensor handed to the writer cannot be stored
	// (nil, data length not matching its shape, negative dimension, a
	// reserved name).
	ErrInvalidTensor = errors.New("checkpoint: invalid tensor")
)
