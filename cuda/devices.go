//go:build cuda

package cuda

import (
	"fmt"
	"strings"

	"gorgonia.org/cu"
)

// Built reports whether this binary was built with CUDA support.
const Built = true

// Available reports whether a GPU is visible to this process.
func Available() bool {
	n, err := cu.NumDevices()
	return err == nil && n > 0
}

// Devices lists the visible GPUs. It needs no context, so it may be called
// from any goroutine.
func Devices() ([]DeviceInfo, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, wrapDriver("count devices", err)
	}
	out := make([]DeviceInfo, 0, n)
	for i := range n {
		d, err := deviceInfo(i)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Describe is a one-line summary for `cohort version`: driver and cuBLAS
// versions and the GPUs.
func Describe() string {
	v := cu.Version()
	s := fmt.Sprintf("driver %d.%d, cuBLAS %s", v/1000, v%1000/10, blasVersion())
	devs, err := Devices()
	if err != nil {
		return s + ", " + err.Error()
	}
	if len(devs) == 0 {
		return s + ", no GPU visible"
	}
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = d.String()
	}
	return fmt.Sprintf("%s, %d GPU(s): %s", s, len(devs), strings.Join(names, "; "))
}

func deviceInfo(ordinal int) (DeviceInfo, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return DeviceInfo{}, wrapDriver("count devices", err)
	}
	if ordinal < 0 || ordinal >= n {
		return DeviceInfo{}, fmt.Errorf("%w: ordinal %d, %d visible", ErrNoDevice, ordinal, n)
	}
	d, err := cu.GetDevice(ordinal)
	if err != nil {
		return DeviceInfo{}, wrapDriver("get device", err)
	}
	info := DeviceInfo{Ordinal: ordinal}
	if info.Name, err = d.Name(); err != nil {
		return info, wrapDriver("device name", err)
	}
	if info.MemoryBytes, err = d.TotalMem(); err != nil {
		return info, wrapDriver("device memory", err)
	}
	for _, a := range []struct {
		attr cu.DeviceAttribute
		dst  *int
	}{
		{cu.ComputeCapabilityMajor, &info.Major},
		{cu.ComputeCapabilityMinor, &info.Minor},
		{cu.MultiprocessorCount, &info.SMs},
	} {
		if *a.dst, err = d.Attribute(a.attr); err != nil {
			return info, wrapDriver("device attribute", err)
		}
	}
	return info, nil
}
