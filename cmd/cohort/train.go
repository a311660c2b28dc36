package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"cohort/cuda"
	"cohort/dist"
	"cohort/engine/checkpoint"
	"cohort/engine/config"
	"cohort/engine/cpu"
	"cohort/engine/profile"
	"cohort/engine/task"
	"cohort/engine/train"
	"cohort/hooks"
)

// unloggedDeviceReads is how often, in steps, a GPU run without step logs
// (--log-freq 0) reads its loss back from the device.
const unloggedDeviceReads = 100

// trainCmd is classy_train's hydra_main: flags + config files + overrides.
type trainCmd struct {
	Config           []string `short:"c" name:"config" required:"" placeholder:"FILE" help:"Task config (YAML or ClassyVision JSON); repeat to deep-merge several."`
	Overrides        []string `arg:"" optional:"" placeholder:"KEY=VALUE" help:"Hydra-style overrides: a.b=v sets, +a.b=v adds, ~a.b deletes."`
	OutputDir        string   `placeholder:"DIR" help:"Run folder for metrics.jsonl and checkpoints (default ./output/<name>-<timestamp>)."`
	CheckpointFolder string   `placeholder:"DIR" help:"Checkpoint folder (default <output-dir>/checkpoints)."`
	CheckpointPeriod int      `default:"1" help:"Checkpoint every N train phases (and after the last)."`
	KeepCheckpoints  int      `default:"3" help:"Keep the newest K checkpoints."`
	Resume           string   `env:"COHORT_RESUME" placeholder:"PATH|auto" help:"Resume from a checkpoint (.json), or 'auto': the newest valid one in the checkpoint folder, or in the newest ./output/<name>-* run."`
	LogFreq          int      `default:"100" help:"Log loss and LR every N train steps (0: phase summaries only)."`
	ShowProgress     bool     `help:"Draw a progress bar when stderr is a terminal."`
	NoTensorboard    bool     `help:"Do not write TensorBoard events (<output-dir>/tensorboard)."`
	Device           string   `default:"auto" enum:"cpu,cuda,auto" help:"cpu, cuda, or auto (CUDA when built with it and a GPU is visible)."`
	Comm             string   `default:"auto" enum:"auto,nccl,tcp" help:"How GPU ranks average gradients: nccl (NCCL on the GPUs; one GPU per rank), tcp (the TCP ring through host memory), auto (NCCL when it loads and every rank of a node has its own GPU)."`
	TF32             bool     `name:"tf32" help:"On the GPU, let cuBLAS round float32 matrix products to TF32 on tensor cores (about 8x faster, about 1e-3 relative error), as torch.backends.cuda.matmul.allow_tf32."`
	Seed             uint64   `default:"0" help:"Seed for initialisation, shuffling and dropout."`
	Threads          int      `default:"0" help:"CPU threads for math (0: all cores)."`
	Env              string   `name:"env" enum:",launcher,slurm,none" default:"" help:"Where this rank's place comes from: launcher, slurm (an srun task), none (train alone); empty detects."`
	BucketMB         float64  `name:"bucket-mb" default:"25" help:"Gradient all-reduce bucket size in MiB (DDP's bucket_cap_mb), over the TCP ring and through NCCL; smaller buckets start communicating earlier in backward."`
	Profiler         bool     `help:"Record a Chrome-trace timeline of every rank (forward, backward, each bucket's all-reduce, optimizer, data, checkpoints) into <output-dir>/trace.json (chrome://tracing, Perfetto)."`
	Requeue          bool     `help:"Under SLURM: after a preemption checkpoint, rank 0 runs scontrol requeue for this job."`
	DataRoot         string   `env:"COHORT_DATA_DIR" placeholder:"DIR" help:"Where MNIST lives when dataset.*.root is empty (default ~/.cache/cohort/mnist, filled by make data)."`
}

// Run is classy_train's main: seed, build the task, join the process
// group, set up hooks, train.
func (c *trainCmd) Run(io streams) error {
	cfg, err := config.Load(c.Config, c.Overrides)
	if err != nil {
		return err
	}
	if err := c.checkDevice(); err != nil {
		return err
	}
	env, err := dist.FromEnv(os.Getenv, c.Env)
	if err != nil {
		return err
	}
	threads := c.threads(env)
	// GOMAXPROCS stays at the thread count even with several ranks: an
	// extra slot for the bucket all-reduce goroutine measured slower on a
	// full machine (2 ranks × 1 thread on 2 cores: 29.4k against 34.8k
	// samples/s). With one slot the goroutine still runs while the main one
	// sits in a long OpenBLAS GEMM (MNIST MLP: 35 of 192 all-reduce spans
	// overlapped backward), but not during short pure-Go ones.
	cpu.SetThreads(threads)
	dataRoot, err := dataRoot(c.DataRoot)
	if err != nil {
		return err
	}
	t, err := task.Build(cfg, task.Options{Seed: c.Seed, BLAS: cpu.BLAS(), WorldSize: env.WorldSize, DataRoot: dataRoot})
	if err != nil {
		return err
	}
	// Installed before the rendezvous: a TERM while waiting for peers
	// (srun --kill-on-bad-exit) must end the wait, not be lost.
	stop := stopOnSignals()
	defer stop.release()
	var comm train.Comm
	if env.WorldSize > 1 {
		joinStart := time.Now()
		group, err := dist.Join(stop.context(), env)
		if err != nil {
			if stop.requested.Load() {
				return fmt.Errorf("%w: %s while forming the process group: %v", train.ErrPreempted, stop.signal(), err)
			}
			return err
		}
		if group.Rank() == 0 {
			fmt.Fprintf(io.Out, "process group: %d ranks joined in %v (rendezvous over NATS, TCP ring data plane)\n",
				env.WorldSize, time.Since(joinStart).Round(time.Millisecond))
			if addrs := group.DataAddrs(); len(addrs) <= 8 {
				fmt.Fprintf(io.Out, "data plane: %s\n", strings.Join(addrs, " "))
			}
		}
		defer group.Close()
		comm = group
		err = c.train(io, cfg, t, env, group.Rank(), comm, stop)
		if err != nil && !errors.Is(err, train.ErrPreempted) {
			// Peers learn at once instead of by a missed heartbeat. A
			// preemption is not a failure: every rank stops at the same
			// step, and an abort could cut rank 0's last collective short.
			group.Abort(fmt.Sprintf("rank %d failed: %v", group.Rank(), err))
		}
		return err
	}
	return c.train(io, cfg, t, env, 0, comm, stop)
}

// train runs the task as rank (0 when alone): rank 0 owns the output
// folder and the resume checkpoint; the trainer shares them with the rest.
func (c *trainCmd) train(io streams, cfg *config.Config, t *task.Task, env dist.Env, rank int, comm train.Comm, stop *stopRequest) error {
	var outDir, ckDir string
	var resumeFrom *checkpoint.Checkpoint
	if rank == 0 {
		var err error
		if outDir, ckDir, resumeFrom, err = c.folders(io, cfg.Name); err != nil {
			return err
		}
	}
	resolved, err := cfg.JSON()
	if err != nil {
		return err
	}
	var prof *profile.Recorder
	if c.Profiler {
		prof = profile.New(rank, 0)
		// Every rank writes its trace next to rank 0's output, so they
		// must all know the folder rank 0 picked.
		if outDir, err = shareString(comm, outDir); err != nil {
			return fmt.Errorf("share the output folder: %w", err)
		}
	}
	hookList := hooks.NewList(rank, hooks.Configure(hooks.Flags{
		OutputDir: outDir, CheckpointFolder: ckDir, CheckpointPeriod: c.CheckpointPeriod,
		KeepCheckpoints: c.KeepCheckpoints, LogFreq: c.LogFreq, ShowProgress: c.ShowProgress, NoTensorboard: c.NoTensorboard,
		Terminal: hooks.IsTerminal(os.Stderr), Version: version, Out: io.Out, Err: io.Err,
	}, resolved)...)
	opts := train.Options{Seed: c.Seed, Comm: comm, Hooks: hookList, Stop: stop.requested, Profile: prof,
		BucketBytes: max(int(c.BucketMB*(1<<20)), 4)}
	device := fmt.Sprintf("cpu (%s, %d threads)", cpu.BLASName, c.threads(env))
	if c.useCUDA() {
		accel, name, closeDevice, err := openAccelerator(t, env, c.TF32, c.Comm, opts.BucketBytes, comm)
		switch {
		case errors.Is(err, errNotOnGPU) && c.Device == "auto":
			if rank == 0 {
				fmt.Fprintf(io.Err, "cohort: --device auto: %v; training on the CPU\n", err)
			}
		case err != nil:
			return err
		default:
			defer closeDevice()
			opts.Accelerator, device = accel, name
			// Reading the loss back waits for the GPU: read it where the
			// log prints it, or every unloggedDeviceReads steps, so a
			// diverged loss is still noticed soon.
			opts.DeviceReadEvery = c.LogFreq
			if c.LogFreq <= 0 {
				opts.DeviceReadEvery = unloggedDeviceReads
			}
		}
	}
	tr, err := train.New(t, opts)
	if err != nil {
		return err
	}
	if resumeFrom != nil {
		if err := tr.Restore(resumeFrom); err != nil {
			return err
		}
		fmt.Fprintf(io.Out, "resumed from %s (epoch %d, %d updates)\n", resumeFrom.Path, resumeFrom.Meta.Epoch, resumeFrom.Meta.NumUpdates)
	}
	if rank == 0 {
		fmt.Fprintf(io.Out, "cohort %s: task %q, %d epochs, %d rank(s), device %s, output %s\n",
			version, cfg.Name, cfg.NumEpochs, env.WorldSize, device, outDir)
	}
	err = tr.Run()
	if prof != nil && (err == nil || errors.Is(err, train.ErrPreempted)) {
		if terr := writeTraces(io, comm, prof, rank, outDir); terr != nil {
			return terr
		}
	}
	if errors.Is(err, train.ErrPreempted) && rank == 0 {
		fmt.Fprintf(io.Err, "cohort: stop requested (%s): checkpoint written, exiting with code %d\n", stop.signal(), ExitPreempted)
		if c.Requeue {
			requeue(io, env)
		}
	}
	return err
}

// threads is --threads, or the cores shared fairly among this node's ranks.
func (c *trainCmd) threads(env dist.Env) int {
	if c.Threads > 0 {
		return c.Threads
	}
	return max(runtime.NumCPU()/env.LocalWorldSize, 1)
}

// errNotOnGPU marks a task the GPU backend cannot run: --device cuda
// stops on it, --device auto trains on the CPU instead.
var errNotOnGPU = errors.New("not supported on the GPU")

// checkDevice refuses --device cuda on a binary or a machine that cannot
// do it, and GPU-only flags without a GPU.
func (c *trainCmd) checkDevice() error {
	if c.Device == "cuda" && !cuda.Available() {
		if cuda.Built {
			return fmt.Errorf("%w: --device cuda: no GPU visible (check CUDA_VISIBLE_DEVICES and nvidia-smi), or use --device cpu", errUsage)
		}
		return fmt.Errorf("%w: --device cuda: %w", errUsage, cuda.ErrNotBuilt)
	}
	if c.TF32 && !c.useCUDA() {
		return fmt.Errorf("%w: --tf32 applies to GPU training; drop it or train with --device cuda", errUsage)
	}
	if c.Comm == "nccl" && !c.useCUDA() {
		return fmt.Errorf("%w: --comm nccl applies to GPU training; drop it or train with --device cuda", errUsage)
	}
	return nil
}

// useCUDA resolves --device: cuda, or auto on a CUDA build with a GPU.
func (c *trainCmd) useCUDA() bool {
	return c.Device == "cuda" || (c.Device == "auto" && cuda.Available())
}

// dataRoot is the --data-root flag when given, else ~/.cache/cohort/mnist
// (where `make data` puts MNIST).
func dataRoot(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: no cache dir for the default data root (%v); pass --data-root", errUsage, err)
	}
	return filepath.Join(cache, "cohort", "mnist"), nil
}

// folders picks the run's output and checkpoint folders and, with
// --resume, the checkpoint to start from.
func (c *trainCmd) folders(io streams, name string) (outDir, ckDir string, from *checkpoint.Checkpoint, err error) {
	outDir = c.OutputDir
	if c.Resume == "auto" && outDir == "" && c.CheckpointFolder == "" {
		outDir, err = newestRun(name)
		if err != nil {
			return "", "", nil, err
		}
	}
	if outDir == "" {
		outDir = filepath.Join("output", fmt.Sprintf("%s-%s", name, time.Now().Format("20060102-150405")))
	}
	ckDir = c.CheckpointFolder
	if ckDir == "" {
		ckDir = filepath.Join(outDir, "checkpoints")
	}
	switch c.Resume {
	case "":
	case "auto":
		ck, skipped, err := checkpoint.Latest(ckDir)
		for _, s := range skipped {
			fmt.Fprintf(io.Err, "cohort: skipping invalid checkpoint: %v\n", s)
		}
		switch {
		case errors.Is(err, checkpoint.ErrNotFound):
			fmt.Fprintf(io.Err, "cohort: --resume auto: no valid checkpoint in %s, starting fresh\n", ckDir)
		case err != nil:
			return "", "", nil, err
		default:
			from = ck
		}
	default:
		if from, err = checkpoint.Load(c.Resume); err != nil {
			return "", "", nil, fmt.Errorf("--resume %s: %w", c.Resume, err)
		}
	}
	return outDir, ckDir, from, nil
}

// newestRun is the newest ./output/<name>-* folder, or "" when none.
func newestRun(name string) (string, error) {
	matches, err := filepath.Glob(filepath.Join("output", name+"-*"))
	if err != nil || len(matches) == 0 {
		return "", err
	}
	// The timestamp suffix sorts lexically; Glob returns sorted names.
	return matches[len(matches)-1], nil
}
