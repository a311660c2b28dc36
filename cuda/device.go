//go:build cuda

package cuda

import (
	"fmt"
	"runtime"
	"sync"
)

// Device is one GPU owned by one rank. It runs a goroutine locked to an OS
// thread on which the device's primary context is current; every CUDA and
// cuBLAS call for the device happens there, through Do. Its methods are
// safe for concurrent use.
type Device struct {
	info DeviceInfo
	work chan func(*Queue)
	mu   sync.RWMutex // held for reading while a closure is handed over
	shut bool
}

// Open starts the device thread for GPU ordinal: it makes the primary
// context current there, creates the stream and the cuBLAS handle, and
// loads the kernels.
func Open(ordinal int, o Options) (*Device, error) {
	info, err := deviceInfo(ordinal)
	if err != nil {
		return nil, err
	}
	d := &Device{info: info, work: make(chan func(*Queue))}
	ready := make(chan error)
	go d.serve(ordinal, o, ready)
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("cuda: open device %d: %w", ordinal, err)
	}
	return d, nil
}

// serve is the device thread. It never unlocks its OS thread, so when it
// returns the thread, with the context current on it, ends with it.
func (d *Device) serve(ordinal int, o Options, ready chan<- error) {
	runtime.LockOSThread()
	q, err := newQueue(ordinal, o)
	ready <- err
	if err != nil {
		return
	}
	for f := range d.work {
		f(q)
	}
}

// Info describes the GPU.
func (d *Device) Info() DeviceInfo { return d.info }

// Do runs f on the device thread and returns its error, or the first error
// of an operation f enqueued. Work f enqueues may still be running on the
// GPU when Do returns (launch errors then surface at a later Sync); Queue
// and the Buffers it hands out must not be used outside f.
func (d *Device) Do(f func(q *Queue) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.shut {
		return ErrClosed
	}
	done := make(chan error, 1)
	d.work <- func(q *Queue) { done <- q.run(f) }
	return <-done
}

// Close waits for the GPU to finish, frees everything the device holds and
// ends its thread. Later calls of Do return ErrClosed.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.shut {
		return nil
	}
	done := make(chan error, 1)
	d.work <- func(q *Queue) { done <- q.close() }
	err := <-done
	d.shut = true
	close(d.work)
	return err
}
