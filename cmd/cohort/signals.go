package main

import (
	"context"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// stopRequest turns SIGUSR1 (SLURM's advance warning, `--signal=USR1@90`)
// and SIGTERM (scancel, preemption) into a flag the trainer polls at its
// next update: the handler itself does nothing else, so no checkpoint is
// ever written from inside a signal handler.
type stopRequest struct {
	requested *atomic.Bool
	last      atomic.Value // the signal's name
	sigs      chan os.Signal
	done      chan struct{}
	cancel    context.CancelFunc
	ctx       context.Context
}

func stopOnSignals() *stopRequest {
	r := &stopRequest{requested: new(atomic.Bool), sigs: make(chan os.Signal, 2), done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	signal.Notify(r.sigs, syscall.SIGUSR1, syscall.SIGTERM)
	go func() {
		for {
			select {
			case sig := <-r.sigs:
				r.last.Store(sig.String())
				r.requested.Store(true)
				r.cancel()
			case <-r.done:
				return
			}
		}
	}()
	return r
}

// signal names the signal that asked for the stop.
func (r *stopRequest) signal() string {
	if s, ok := r.last.Load().(string); ok {
		return s
	}
	return "none"
}

// context is cancelled by the first stop request: blocking waits that are
// not at a step boundary (the rendezvous) end on it.
func (r *stopRequest) context() context.Context { return r.ctx }

// release stops watching. It deliberately leaves SIGUSR1/SIGTERM caught
// (not restored to their default, fatal action): a SIGTERM that the
// launcher sends while this rank is reporting its own failure must not kill
// it before it exits with its own code, or the launcher would blame another
// rank. The process exits right after anyway.
func (r *stopRequest) release() {
	close(r.done)
	r.cancel()
}
