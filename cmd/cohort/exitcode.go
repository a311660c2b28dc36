package main

import (
	"errors"

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
)

// usageErrors are the errors that mean "fix your input", exit code 2.
var usageErrors = []error{
	config.ErrInvalid, task.ErrUnsupported, data.ErrDataset, train.ErrIncompatible,
	checkpoint.ErrNotFound, checkpoint.ErrCorrupt, checkpoint.ErrFormat, errUsage,
}

// errUsage marks a bad flag combination found after parsing.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	for _, u := range usageErrors {
		if errors.Is(err, u) {
			return ExitUsage
		}
	}
	return ExitFailure
}
