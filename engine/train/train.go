// Package train is the trainer loop: phases of steps (forward, loss,
// backward with bucketed gradient all-reduce, optimizer update), meters
// reduced across ranks at each phase end, and hooks called at every
// lifecycle point, in the manner of ClassyVision's ClassificationTask.
package train

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"cohort/engine/data"
	"cohort/engine/meter"
	"cohort/engine/nn"
	"cohort/engine/optim"
	"cohort/engine/profile"
	"cohort/engine/task"
	"cohort/engine/tensor"
)

// ErrDiverged marks a loss that became NaN or infinite.
var ErrDiverged = errors.New("train: loss is not finite")

// ErrPreempted is returned by Run when a stop was requested (Options.Stop)
// and every rank has stopped at the same step, after OnPreempt hooks (the
// checkpoint) ran.
var ErrPreempted = errors.New("train: preempted")

// Hooks receives the trainer's lifecycle events. Returning an error stops
// training with it.
type Hooks interface {
	OnStart(*State) error
	OnPhaseStart(*State) error
	OnStep(*State) error
	OnPhaseEnd(*State) error
	OnEnd(*State) error
	// OnPreempt runs on every rank when the ranks agreed to stop early;
	// State.Step says how far the phase got.
	OnPreempt(*State) error
}

// Phase is one pass over a dataset: a train phase per epoch, and a test
// phase after every test_phase_period-th (and the last) epoch.
type Phase struct {
	Index int
	Train bool
	Epoch int // 0-based epoch this phase belongs to
}

// Name is "train" or "test".
func (p Phase) Name() string {
	if p.Train {
		return "train"
	}
	return "test"
}

// PhaseResult is a finished phase's metrics, reduced over all ranks.
type PhaseResult struct {
	Phase   Phase
	Values  map[string]float64 // "loss", "accuracy", "top5", …
	Samples int                // over all ranks
	// Seconds is the phase's time in this process; for a phase resumed
	// midway, that of the steps after the resume, which processed
	// Samples-ResumedSamples samples.
	Seconds        float64
	ResumedSamples int
}

// SamplesPerSecond is the phase's global throughput, over the steps this
// process timed.
func (r PhaseResult) SamplesPerSecond() float64 {
	if r.Seconds == 0 {
		return 0
	}
	return float64(r.Samples-r.ResumedSamples) / r.Seconds
}

// State is what hooks see.
type State struct {
	Trainer *Trainer
	Task    *task.Task
	Rank    int
	World   int
	Phases  []Phase
	Phase   Phase
	// Step is the number of steps done in the current phase; Steps is how
	// many the phase has.
	Step, Steps int
	NumUpdates  int64
	LR          float64
	// Loss is the local mean loss of the last step.
	Loss float32
	// Meters are this rank's running meters for the phase (reduced over
	// ranks only at the phase end, in Result).
	Meters []meter.Meter
	// Result is set at OnPhaseEnd.
	Result *PhaseResult
	// PhaseStart is when the current phase started on this rank.
	PhaseStart time.Time
}

// Options configure a Trainer.
type Options struct {
	// Seed drives shuffling and dropout; it must be the same on every rank.
	Seed uint64
	// Comm is the process group; nil means one process.
	Comm Comm
	// Hooks receives lifecycle events; nil means none.
	Hooks Hooks
	// BucketBytes bounds a gradient all-reduce bucket (DefaultBucketBytes if 0).
	BucketBytes int
	// Stop, when set, asks for a checkpoint-and-stop (SIGUSR1/SIGTERM under
	// SLURM). Signal handlers only set it; the ranks agree on it at the next
	// update, so all stop after the same step.
	Stop *atomic.Bool
	// Profile records a timeline of the steps (nil: off, at no cost).
	Profile *profile.Recorder
	// Accelerator, when set, runs the model on a device instead of the
	// task's CPU layers.
	Accelerator Accelerator
	// DeviceReadEvery is how often, in steps, an accelerated run reads the
	// loss and meter sums back from the device (0 or 1: every step); they
	// are also read at every phase's last step and before a preemption.
	// A read waits for the device, so reading seldom keeps it busy; in
	// between, State.Loss keeps the last value read, and a non-finite loss
	// is noticed at the next read.
	DeviceReadEvery int
}

// Trainer runs a task's phases.
type Trainer struct {
	task   *task.Task
	comm   Comm
	hooks  Hooks
	seed   uint64
	grads  *gradBuckets
	layers []nn.Layer
	state  State
	next   int // index of the next phase to run
	// resume is where a snapshot taken now would resume; resumeMeters are
	// restored meter sums for a run resumed mid-phase.
	resume       position
	resumeMeters []float32
	stop         *atomic.Bool
	prof         *profile.Recorder
	// stopAgreed: all ranks saw a stop request at the last update.
	stopAgreed bool
	dropRNG    *rand.PCG
	pass       nn.Pass
	// loaders make the train and the test batches.
	loaders [2]*data.Loader
	// overlap all-reduces gradient buckets during backward; off when
	// BatchNorm statistics are synchronised, whose collectives run on the
	// training goroutine and must not interleave with the buckets'.
	overlap bool
	// syncedBNs are the BatchNorms whose statistics go through the comm.
	syncedBNs []*nn.BatchNorm
	accel     Accelerator // nil: the CPU layers
	readEvery int         // Options.DeviceReadEvery
}

// New prepares a trainer: builds the phase list and lays gradients into
// buckets.
func New(t *task.Task, o Options) (*Trainer, error) {
	comm := o.Comm
	if comm == nil {
		comm = solo{}
	}
	hooks := o.Hooks
	if hooks == nil {
		hooks = noHooks{}
	}
	bucketBytes := o.BucketBytes
	if bucketBytes == 0 {
		bucketBytes = DefaultBucketBytes
	}
	stop := o.Stop
	if stop == nil {
		stop = new(atomic.Bool)
	}
	tr := &Trainer{
		task: t, comm: comm, hooks: hooks, seed: o.Seed, stop: stop, prof: o.Profile, accel: o.Accelerator, readEvery: o.DeviceReadEvery,
		layers:  t.Model.Layers,
		dropRNG: rand.NewPCG(0, 0),
	}
	tr.pass.Rand = rand.New(tr.dropRNG)
	tr.grads = newGradBuckets(comm, tr.layers, bucketBytes, o.Profile)
	var err error
	if tr.loaders[0], err = data.NewLoader(t.Train, t.TrainTransforms, o.Seed, t.TrainBatch, t.TrainWorkers); err != nil {
		return nil, fmt.Errorf("train data: %w", err)
	}
	if t.Test != nil {
		if tr.loaders[1], err = data.NewLoader(t.Test, t.TestTransforms, o.Seed, t.TestBatch, t.TestWorkers); err != nil {
			return nil, fmt.Errorf("test data: %w", err)
		}
	}
	if tr.accel != nil {
		if err := CheckAccelerable(t); err != nil {
			return nil, err
		}
	}
	tr.overlap = true
	if t.SyncBatchNorm && comm.Size() > 1 {
		tr.overlap = false
		nn.Walk(t.Model, func(l nn.Layer) {
			if bn, ok := l.(*nn.BatchNorm); ok {
				bn.SetStatsReducer(comm.AllReduceSum)
				tr.syncedBNs = append(tr.syncedBNs, bn)
			}
		})
	}
	tr.state = State{Trainer: tr, Task: t, Rank: comm.Rank(), World: comm.Size(), Phases: phases(t)}
	return tr, nil
}

func phases(t *task.Task) []Phase {
	var ps []Phase
	for e := range t.NumEpochs {
		ps = append(ps, Phase{Index: len(ps), Train: true, Epoch: e})
		if t.Test != nil && ((e+1)%t.TestPhasePeriod == 0 || e == t.NumEpochs-1) {
			ps = append(ps, Phase{Index: len(ps), Train: false, Epoch: e})
		}
	}
	return ps
}

// Profiler is the timeline recorder (nil when profiling is off), for hooks
// that want their own spans (checkpoint writes).
func (tr *Trainer) Profiler() *profile.Recorder { return tr.prof }

// State returns the live state (for hooks and the CLI).
func (tr *Trainer) State() *State { return &tr.state }

// Run makes every rank start from rank 0's weights, optimizer state and
// position (its initialisation, or the checkpoint it restored), then trains
// from that position to the end, calling hooks throughout.
func (tr *Trainer) Run() error {
	s := &tr.state
	if err := tr.syncFromRankZero(); err != nil {
		return err
	}
	if err := tr.syncDevice(); err != nil {
		return err
	}
	if err := tr.hooks.OnStart(s); err != nil {
		return fmt.Errorf("hook on start: %w", err)
	}
	for ; tr.next < len(s.Phases); tr.next++ {
		p := s.Phases[tr.next]
		if tr.resume.step == 0 {
			// Between phases nothing else reduces: agree here, so a stop
			// during a test phase is honoured before the next one.
			if stop, err := tr.agreeStop(); err != nil {
				return err
			} else if stop {
				tr.resume = position{phase: p.Index}
				s.Phase, s.Step, s.Steps = p, 0, 0
				return tr.preempt()
			}
		}
		if err := tr.runPhase(p); err != nil {
			return err
		}
	}
	if err := tr.hooks.OnEnd(s); err != nil {
		return fmt.Errorf("hook on end: %w", err)
	}
	return nil
}

func (tr *Trainer) runPhase(p Phase) error {
	t, s := tr.task, &tr.state
	ds, batch := t.Train, t.TrainBatch
	if !p.Train {
		ds, batch = t.Test, t.TestBatch
	}
	smp := data.Sampler{N: ds.Len(), Shuffle: p.Train && t.ShuffleTrain, Seed: tr.seed, Rank: s.Rank, World: s.World}
	idx := smp.Epoch(p.Epoch)
	s.Phase, s.Step, s.Steps = p, 0, (len(idx)+batch-1)/batch
	s.Meters, s.Result, s.PhaseStart = t.NewMeters(), nil, time.Now()
	samples, resumed := 0, 0
	if tr.resume.phase == p.Index && tr.resume.step > 0 {
		// Resumed mid-phase: skip the steps done and take over the meter
		// sums (reduced over ranks when the checkpoint was taken; rank 0
		// carries them, the others start from zero).
		s.Step = tr.resume.step
		if tr.resumeMeters != nil {
			resumed = int(tr.resumeMeters[0])
			if s.Rank == 0 {
				samples = resumed
				setMeterStates(s.Meters, tr.resumeMeters[1:])
			}
		}
		tr.resumeMeters = nil
	}
	if err := tr.hooks.OnPhaseStart(s); err != nil {
		return fmt.Errorf("hook on %s phase start: %w", p.Name(), err)
	}
	loader := tr.loaders[0]
	if !p.Train {
		loader = tr.loaders[1]
	}
	batches := loader.Start(p.Epoch, idx, s.Step)
	defer batches.Close()
	shape := loader.SampleShape()
	for ; s.Step < s.Steps; s.Step++ {
		span := tr.prof.Begin("load batch", profile.CatData)
		b := batches.Next()
		span.End()
		x := tensor.FromData(b.X, append([]int{len(b.Y)}, shape...)...)
		y := b.Y
		var err error
		if p.Train {
			err = tr.trainStep(x, y)
		} else {
			err = tr.testStep(x, y)
		}
		if err != nil {
			return fmt.Errorf("%s phase %d (epoch %d) step %d: %w", p.Name(), p.Index, p.Epoch+1, s.Step+1, err)
		}
		samples += len(y)
		if err := tr.hooks.OnStep(s); err != nil {
			return fmt.Errorf("hook on step: %w", err)
		}
		if tr.stopAgreed {
			s.Step++
			tr.resume = position{phase: p.Index, step: s.Step}
			if err := tr.reducePartialMeters(samples); err != nil {
				return err
			}
			return tr.preempt()
		}
	}
	// An accelerated model's host copy is brought up to date first: the
	// buffer broadcast below and the hooks read it.
	if err := tr.syncHost(); err != nil {
		return err
	}
	if p.Train && !tr.task.SyncBatchNorm && s.World > 1 {
		// Each rank's running statistics saw only its own batches; like
		// DDP's broadcast_buffers, all ranks take rank 0's, so the test
		// phase and the checkpoint agree with every rank.
		if err := tr.broadcastBuffers(); err != nil {
			return fmt.Errorf("%s phase %d: %w", p.Name(), p.Index, err)
		}
		if err := tr.syncDevice(); err != nil {
			return err
		}
	}
	res, err := tr.reduceMeters(p, samples)
	if err != nil {
		return fmt.Errorf("%s phase %d: reduce meters: %w", p.Name(), p.Index, err)
	}
	res.ResumedSamples = resumed
	s.Result = res
	tr.resume = position{phase: p.Index + 1}
	if err := tr.hooks.OnPhaseEnd(s); err != nil {
		return fmt.Errorf("hook on %s phase end: %w", p.Name(), err)
	}
	return nil
}

// trainStep runs forward, loss, backward (with bucketed all-reduce on the
// last micro-batch of an accumulation) and, on that micro-batch, the update.
func (tr *Trainer) trainStep(x *tensor.Tensor, y []int32) error {
	t, s := tr.task, &tr.state
	micro := s.Step % t.AccumSteps
	last := micro == t.AccumSteps-1 || s.Step == s.Steps-1
	if tr.accel != nil {
		return tr.accelTrainStep(x.Data, y, micro, last)
	}
	if micro == 0 {
		tr.grads.zero()
	}
	// Dropout masks depend only on (seed, rank, update, micro-batch): a
	// resumed run draws the same ones.
	tr.dropRNG.Seed(tr.seed^uint64(s.Rank)<<48, uint64(s.NumUpdates)<<8|uint64(micro))
	tr.pass.Train = true
	span := tr.prof.Begin("forward", profile.CatForward)
	logits := t.Model.Forward(x, tr.pass)
	loss, err := t.Loss.Forward(logits, y)
	span.End()
	if err != nil {
		return err
	}
	if err := tr.checkFinite(loss); err != nil {
		return err
	}
	span = tr.prof.Begin("backward", profile.CatBackward)
	dlogits := t.Loss.Backward()
	if last && s.World > 1 {
		tr.grads.setStop(tr.stop.Load())
		tr.grads.start()
		if tr.overlap {
			t.Model.BackwardNotify(dlogits, tr.grads.ready)
		} else {
			t.Model.Backward(dlogits)
			for i := range tr.layers {
				tr.grads.ready(i)
			}
		}
		span.End()
		for _, bn := range tr.syncedBNs {
			if err := bn.Err(); err != nil {
				tr.grads.wait()
				return fmt.Errorf("synchronised batchnorm: %w", err)
			}
		}
		if err := tr.grads.wait(); err != nil {
			return err
		}
		tr.stopAgreed = tr.grads.stopRequested()
	} else {
		t.Model.Backward(dlogits)
		span.End()
		tr.stopAgreed = last && tr.stop.Load()
	}
	for _, m := range s.Meters {
		m.Update(logits, y, loss)
	}
	s.Loss = loss
	if !last {
		return nil
	}
	if n := micro + 1; n > 1 {
		tr.grads.scale(1 / float32(n))
	}
	s.LR = tr.lrAt(s.NumUpdates)
	span = tr.prof.Begin("optimizer", profile.CatOptimizer)
	t.Optimizer.Step(float32(s.LR))
	span.End()
	s.NumUpdates++
	return nil
}

// lrAt evaluates the LR schedule before update u.
func (tr *Trainer) lrAt(u int64) float64 {
	t := tr.task
	perEpoch := (tr.state.Steps + t.AccumSteps - 1) / t.AccumSteps
	return t.LR.At(optim.Progress(t.LRInterval, int(u), perEpoch, t.NumEpochs))
}

func (tr *Trainer) testStep(x *tensor.Tensor, y []int32) error {
	if tr.accel != nil {
		return tr.accelTestStep(x.Data, y)
	}
	t, s := tr.task, &tr.state
	tr.pass.Train = false
	span := tr.prof.Begin("eval forward", profile.CatForward)
	logits := t.Model.Forward(x, tr.pass)
	span.End()
	loss, err := t.Loss.Forward(logits, y)
	if err != nil {
		return err
	}
	for _, m := range s.Meters {
		m.Update(logits, y, loss)
	}
	s.Loss = loss
	return nil
}

// reduceMeters sums every meter's state (and the sample count) over ranks.
func (tr *Trainer) reduceMeters(p Phase, samples int) (*PhaseResult, error) {
	s := &tr.state
	seconds := time.Since(s.PhaseStart).Seconds()
	buf := append([]float32{float32(samples)}, meterStates(s.Meters)...)
	if err := tr.comm.AllReduceSum(buf); err != nil {
		return nil, err
	}
	// The slowest rank's time is the phase's time.
	sec := []float32{float32(seconds)}
	if err := tr.comm.AllReduceMax(sec); err != nil {
		return nil, err
	}
	res := &PhaseResult{Phase: p, Values: map[string]float64{}, Samples: int(buf[0]), Seconds: float64(sec[0])}
	setMeterStates(s.Meters, buf[1:])
	for _, m := range s.Meters {
		maps.Copy(res.Values, m.Values())
	}
	return res, nil
}

// checkFinite stops a run whose training loss became NaN or infinite.
func (tr *Trainer) checkFinite(loss float32) error {
	if loss == loss && loss < 3.4e38 && loss > -3.4e38 {
		return nil
	}
	return fmt.Errorf("%w (%v) at update %d; lower optimizer.lr or check the data", ErrDiverged, loss, tr.state.NumUpdates)
}

type noHooks struct{}

func (noHooks) OnStart(*State) error      { return nil }
func (noHooks) OnPhaseStart(*State) error { return nil }
func (noHooks) OnStep(*State) error       { return nil }
func (noHooks) OnPhaseEnd(*State) error   { return nil }
func (noHooks) OnEnd(*State) error        { return nil }
func (noHooks) OnPreempt(*State) error    { return nil }
