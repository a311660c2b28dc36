// Package cuda is everything in Cohort that touches the GPU, through
// gorgonia.org/cu (the CUDA driver API) and a few direct cuBLAS calls.
//
// Built with the `cuda` tag it gives each rank a Device: one OS thread
// that owns the device's primary context, a compute stream and a copy
// stream, one cuBLAS handle, a caching memory pool and the embedded kernels
// (cuda/kernels/*.cu compiled to fatbin and PTX by
// scripts/cuda/gen-kernels.sh). All GPU work of a rank runs as closures on
// that thread (Device.Do), which receive a Queue: everything enqueued there
// runs in order on the compute stream, asynchronously to the host until
// Queue.Sync or a synchronous copy. Uploads from pinned host memory run on
// the copy stream (async.go), ordered with the compute stream by events.
//
// Without the tag (cuda.go) the package only reports ErrNotBuilt:
// gorgonia.org/cu's init calls cuInit and exits the process when no driver
// is present, so nothing untagged may import it. For the same reason a
// cuda-tagged binary or test cannot start on a machine without a GPU.
//
// Nothing in this package has run on a GPU yet at the time of writing; it
// is compiled and vetted on a machine without one, and scripts/gpu-check.sh
// is the first place its tests run.
package cuda
