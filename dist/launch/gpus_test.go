package launch

import "testing"

func TestGPUAssignment(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "CUDA_VISIBLE_DEVICES" {
				return v
			}
			return ""
		}
	}
	gpus := DetectGPUs(env("3,5,7"))
	for _, tc := range []struct {
		local, nproc int
		want         string
	}{{0, 3, "3"}, {2, 3, "7"}, {1, 2, "5"}, {0, 4, ""}} {
		if got := gpuFor(gpus, tc.local, tc.nproc); got != tc.want {
			t.Errorf("local %d of %d: %q, want %q", tc.local, tc.nproc, got, tc.want)
		}
	}
	if got := gpuFor(nil, 0, 1); got != "" {
		t.Errorf("no GPUs: %q", got)
	}
}
