package launch

import (
	"os"
	"strconv"
	"strings"
)

// nvidiaGPUDir lists one entry per NVIDIA GPU the driver sees.
const nvidiaGPUDir = "/proc/driver/nvidia/gpus"

// DetectGPUs lists the GPU ids workers may be given: CUDA_VISIBLE_DEVICES
// when the caller set it (a scheduler's allocation), else one id per GPU
// the NVIDIA driver reports; nil on a machine without GPUs.
func DetectGPUs(getenv func(string) string) []string {
	if v := getenv("CUDA_VISIBLE_DEVICES"); v != "" {
		return strings.Split(v, ",")
	}
	entries, err := os.ReadDir(nvidiaGPUDir)
	if err != nil {
		return nil
	}
	ids := make([]string, len(entries))
	for i := range entries {
		ids[i] = strconv.Itoa(i)
	}
	return ids
}

// gpuFor is local rank's CUDA_VISIBLE_DEVICES: one GPU per worker when
// there are enough, else "" (workers share what they see, and the CUDA
// backend decides).
func gpuFor(gpus []string, local, nproc int) string {
	if len(gpus) < nproc {
		return ""
	}
	return gpus[local]
}
