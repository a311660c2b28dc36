package main

import (
	"errors"

	"cohort/dist"
	"cohort/dist/collective"
	"cohort/dist/rendezvous"

	"cohort/engine/checkpoint"
	"cohort/engine/config"
	"cohort/engine/data"
	"cohort/engine/task"
	"cohort/engine/train"
)

// Exit codes, documented in the README.
const (
	// ExitOK: training (or the command) finished.
	ExitOK = 0
	// ExitFailure: a runtime failure (I/O, divergence, internal error).
	ExitFailure = 1
	// ExitUsage: bad input — flags, config, overrides, dataset,
	// or a checkpoint that does not fit; nothing was trained.
	ExitUsage = 2
	// ExitRendezvous: the process group did not form in time (the message
	// names the missing ranks), or the NATS server refused the credentials
	// or denied the job's user one of its subjects.
	ExitRendezvous = 3
	// ExitPeerLost: another rank died, hung or aborted; the message names it.
	ExitPeerLost = 4
	// ExitPreempted: SIGUSR1/SIGTERM asked for a stop; every rank stopped
	// at the same step after rank 0 wrote a checkpoint (--resume auto).
	ExitPreempted = 5
)

// usageErrors are the errors that mean "fix your input", exit code 2.
var usageErrors = []error{
	config.ErrInvalid, task.ErrUnsupported, data.ErrDataset, train.ErrIncompatible,
	checkpoint.ErrNotFound, checkpoint.ErrCorrupt, checkpoint.ErrFormat, errUsage, dist.ErrEnv,
}

// peerErrors mean another rank is gone, exit code 4.
var peerErrors = []error{
	collective.ErrPeerLost, collective.ErrPeerStalled, collective.ErrPeerAborted, rendezvous.ErrDisconnected,
}

// errUsage marks a bad flag combination found after parsing.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	var code exitError
	var lost *rendezvous.LostError
	var aborted *rendezvous.AbortError
	switch {
	case errors.As(err, &code):
		return int(code)
	case errors.Is(err, train.ErrPreempted):
		return ExitPreempted
	case errors.Is(err, rendezvous.ErrTimeout), errors.Is(err, rendezvous.ErrAuth), errors.Is(err, rendezvous.ErrPermission),
		errors.Is(err, rendezvous.ErrConflict):
		return ExitRendezvous
	case errors.As(err, &lost), errors.As(err, &aborted):
		return ExitPeerLost
	}
	for _, p := range peerErrors {
		if errors.Is(err, p) {
			return ExitPeerLost
		}
	}
	for _, u := range usageErrors {
		if errors.Is(err, u) {
			return ExitUsage
		}
	}
	return ExitFailure
}
