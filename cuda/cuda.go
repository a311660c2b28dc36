//go:build !cuda

package cuda

// This file is the build without the cuda tag: every entry point reports
// ErrNotBuilt, and Open never returns a Device, so the rest of the API
// (Device.Do, Queue, Buffer) is only in the cuda build.

// Built reports whether this binary was built with CUDA support.
const Built = false

// Available reports whether this binary can use a GPU.
func Available() bool { return false }

// Describe is a one-line summary of CUDA support for `cohort version`.
func Describe() string { return "not built (use `make cuda`)" }

// Devices lists the GPUs; here it always fails with ErrNotBuilt.
func Devices() ([]DeviceInfo, error) { return nil, ErrNotBuilt }

// Device is one GPU owned by a rank; without the cuda tag there is none.
type Device struct{}

// Open fails with ErrNotBuilt.
func Open(ordinal int, o Options) (*Device, error) { return nil, ErrNotBuilt }

// Close fails with ErrNotBuilt.
func (*Device) Close() error { return ErrNotBuilt }

// Info is the zero DeviceInfo.
func (*Device) Info() DeviceInfo { return DeviceInfo{} }
