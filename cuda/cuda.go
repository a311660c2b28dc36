//go:build !cuda

// Package cuda is everything that touches gorgonia.org/cu. Without the
// `cuda` build tag (this file's build) it only says so: gorgonia/cu's init
// exits the process when no GPU is present, so nothing untagged may import it.
package cuda

import "errors"

// ErrNotBuilt is returned when a CUDA feature is asked of a binary built
// without the cuda tag.
var ErrNotBuilt = errors.New("cuda: this binary was built without CUDA support; build it with `make cuda` (bin/cohort-cuda) on a machine with the CUDA toolkit, or use --device cpu")

// Available reports whether this binary can use a GPU.
func Available() bool { return false }

// Describe is a one-line summary of CUDA support for `cohort version`.
func Describe() string { return "not built (use `make cuda`)" }
