package cuda

import "errors"

var (
	// ErrNotBuilt is returned when a CUDA feature is asked of a binary built
	// without the cuda tag.
	ErrNotBuilt = errors.New("cuda: this binary was built without CUDA support; build it with `make cuda` (bin/cohort-cuda) on a machine with the CUDA toolkit, or use --device cpu")
	// ErrNoDevice reports a device ordinal that is not present.
	ErrNoDevice = errors.New("cuda: no such device")
	// ErrClosed is returned by a Device used after Close.
	ErrClosed = errors.New("cuda: device closed")
	// ErrArgument reports sizes or buffers that do not fit an operation.
	ErrArgument = errors.New("cuda: bad argument")
	// ErrDriver wraps a failed CUDA driver call.
	ErrDriver = errors.New("cuda: driver call failed")
	// ErrCUBLAS wraps a failed cuBLAS call.
	ErrCUBLAS = errors.New("cuda: cuBLAS call failed")
)
