package cuda

import "fmt"

// DeviceInfo describes one GPU for `cohort version` and logs.
type DeviceInfo struct {
	Ordinal int
	Name    string
	// Major and Minor are the compute capability (9.0 on an H100/H200).
	Major, Minor int
	// SMs is the number of streaming multiprocessors.
	SMs int
	// MemoryBytes is the total device memory.
	MemoryBytes int64
}

// String is "0: NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)".
func (d DeviceInfo) String() string {
	return fmt.Sprintf("%d: %s (sm_%d%d, %d SMs, %.1f GiB)", d.Ordinal, d.Name, d.Major, d.Minor, d.SMs, float64(d.MemoryBytes)/(1<<30))
}
