//go:build cuda

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"cohort/cuda"
	"cohort/dist"
	"cohort/dist/rendezvous"
	"cohort/engine/gpu"
	"cohort/engine/task"
	"cohort/engine/train"
)

// openAccelerator puts the task's model on this rank's GPU: local rank r
// takes visible device r mod count, as torchrun's users expect (the
// launcher gives each worker its own CUDA_VISIBLE_DEVICES when there are
// enough GPUs, so that is device 0; ranks beyond the GPU count share).
// With --comm nccl (or auto, when NCCL loads and every rank of the node
// has a GPU of its own) gradients are averaged by NCCL on the GPUs, in
// buckets of up to bucketBytes handed over during the backward pass.
func openAccelerator(t *task.Task, env dist.Env, tf32 bool, commMode string, bucketBytes int, comm train.Comm) (train.Accelerator, string, func(), error) {
	if err := train.CheckAccelerable(t); err != nil {
		return nil, "", nil, fmt.Errorf("%w: %w", errNotOnGPU, err)
	}
	devs, err := cuda.Devices()
	if err != nil {
		return nil, "", nil, err
	}
	if len(devs) == 0 {
		return nil, "", nil, fmt.Errorf("%w: --device cuda: no GPU visible (check CUDA_VISIBLE_DEVICES and nvidia-smi)", errUsage)
	}
	ordinal := env.LocalRank % len(devs)
	dev, err := cuda.Open(ordinal, cuda.Options{TF32: tf32})
	if err != nil {
		return nil, "", nil, err
	}
	var reduce func([]float32) error // synchronised BatchNorm over the TCP ring
	if comm != nil && comm.Size() > 1 {
		reduce = comm.AllReduceSum
	}
	a, err := gpu.NewAccelerated(dev, t, bucketBytes, reduce)
	if err != nil {
		dev.Close()
		if errors.Is(err, gpu.ErrUnsupported) {
			err = fmt.Errorf("%w: %w", errNotOnGPU, err)
		}
		return nil, "", nil, err
	}
	closeAll := func() {
		a.Close()
		dev.Close()
	}
	name := fmt.Sprintf("cuda:%d (%s)", ordinal, devs[ordinal].Name)
	// A process training alone has no process group (comm is nil).
	rank, size := 0, 1
	if comm != nil {
		rank, size = comm.Rank(), comm.Size()
	}
	version, nerr := cuda.NCCLVersion()
	useNCCL := commMode == "nccl" ||
		(commMode == "auto" && size > 1 && env.LocalWorldSize <= len(devs) && nerr == nil)
	if !useNCCL {
		if size > 1 {
			name += ", gradients over the TCP ring"
		}
		return a, name, closeAll, nil
	}
	if nerr != nil {
		closeAll()
		return nil, "", nil, fmt.Errorf("%w: --comm nccl: %w", errUsage, nerr)
	}
	nc, err := joinNCCL(dev, comm, rank, size, env)
	if err != nil {
		closeAll()
		return nil, "", nil, err
	}
	na, err := a.WithNCCL(nc)
	if err != nil {
		nc.Close()
		closeAll()
		return nil, "", nil, err
	}
	return na, name + ", gradients over NCCL " + version, closeAll, nil
}

// joinNCCL makes this rank's NCCL communicator: rank 0 draws the unique
// id and broadcasts it over the process group (32 float32s carrying its
// 128 bytes unchanged; alone, there is nobody to tell); the init is bounded
// by the rendezvous timeout.
func joinNCCL(dev *cuda.Device, comm train.Comm, rank, size int, env dist.Env) (*cuda.NCCLComm, error) {
	var id cuda.NCCLID
	if rank == 0 {
		var err error
		if id, err = cuda.NewNCCLID(); err != nil {
			return nil, err
		}
	}
	if comm != nil {
		words := make([]float32, len(id)/4)
		for i := range words {
			words[i] = math.Float32frombits(binary.LittleEndian.Uint32(id[4*i:]))
		}
		if err := comm.Broadcast(words, 0); err != nil {
			return nil, fmt.Errorf("share the NCCL id: %w", err)
		}
		for i, w := range words {
			binary.LittleEndian.PutUint32(id[4*i:], math.Float32bits(w))
		}
	}
	timeout := env.RdzvTimeout
	if timeout <= 0 {
		timeout = rendezvous.DefaultTimeout // as the process group's
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	nc, err := dev.NewNCCLComm(ctx, id, rank, size)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w: NCCL communicator of %d ranks not formed within %v: %w", rendezvous.ErrTimeout, size, timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("NCCL communicator: %w", err)
	}
	return nc, nil
}
