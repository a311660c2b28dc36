// Package hooks holds the training lifecycle hooks — logging, model
// complexity, checkpoints, progress, metrics file — and Configure, which
// picks them from the flags and the config as classy_train's
// configure_hooks does. Each hook says whether it runs on every rank or on
// rank 0 only; the List dispatches accordingly.
package hooks

import (
	"errors"
	"fmt"

	"cohort/engine/train"
)

// Scope says which ranks run a hook.
type Scope int

const (
	// EveryRank hooks run on all ranks (they may join collectives).
	EveryRank Scope = iota
	// RankZero hooks run on global rank 0 only (files, terminal output);
	// they must never run a collective, or the other ranks would hang.
	RankZero
)

// Hook is one lifecycle observer.
type Hook interface {
	train.Hooks
	// Name identifies the hook in errors.
	Name() string
	// Scope says which ranks run it.
	Scope() Scope
}

// Base gives a hook no-op lifecycle methods to override.
type Base struct{}

// OnStart does nothing.
func (Base) OnStart(*train.State) error { return nil }

// OnPhaseStart does nothing.
func (Base) OnPhaseStart(*train.State) error { return nil }

// OnStep does nothing.
func (Base) OnStep(*train.State) error { return nil }

// OnPhaseEnd does nothing.
func (Base) OnPhaseEnd(*train.State) error { return nil }

// OnEnd does nothing.
func (Base) OnEnd(*train.State) error { return nil }

// OnPreempt does nothing.
func (Base) OnPreempt(*train.State) error { return nil }

// List runs the hooks that apply to a rank, in order. It implements
// train.Hooks.
type List struct {
	hooks []Hook
}

// NewList keeps the hooks whose scope includes rank.
func NewList(rank int, hs ...Hook) *List {
	l := &List{}
	for _, h := range hs {
		if h.Scope() == EveryRank || rank == 0 {
			l.hooks = append(l.hooks, h)
		}
	}
	return l
}

// Names lists the active hooks.
func (l *List) Names() []string {
	var names []string
	for _, h := range l.hooks {
		names = append(names, h.Name())
	}
	return names
}

// each calls every hook even when one fails (a broken plot must not cost
// the checkpoint after it) and returns their errors joined.
func (l *List) each(event string, call func(Hook) error) error {
	var errs []error
	for _, h := range l.hooks {
		if err := call(h); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", h.Name(), event, err))
		}
	}
	return errors.Join(errs...)
}

// OnStart calls every hook's OnStart.
func (l *List) OnStart(s *train.State) error {
	return l.each("on_start", func(h Hook) error { return h.OnStart(s) })
}

// OnPhaseStart calls every hook's OnPhaseStart.
func (l *List) OnPhaseStart(s *train.State) error {
	return l.each("on_phase_start", func(h Hook) error { return h.OnPhaseStart(s) })
}

// OnStep calls every hook's OnStep.
func (l *List) OnStep(s *train.State) error {
	return l.each("on_step", func(h Hook) error { return h.OnStep(s) })
}

// OnPhaseEnd calls every hook's OnPhaseEnd.
func (l *List) OnPhaseEnd(s *train.State) error {
	return l.each("on_phase_end", func(h Hook) error { return h.OnPhaseEnd(s) })
}

// OnPreempt calls every hook's OnPreempt.
func (l *List) OnPreempt(s *train.State) error {
	return l.each("on_preempt", func(h Hook) error { return h.OnPreempt(s) })
}

// OnEnd calls every hook's OnEnd.
func (l *List) OnEnd(s *train.State) error {
	return l.each("on_end", func(h Hook) error { return h.OnEnd(s) })
}
