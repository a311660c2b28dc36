// Command cohort trains neural networks data-parallel across processes:
// `cohort train` is one rank (classy_train), `cohort config` prints a
// resolved config, `cohort version` says what this binary can do.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"
)

// version is set at link time by the Makefile (-X main.version=…).
var version = "dev"

// cli is the command tree; kong fills it from the arguments.
type cli struct {
	Train   trainCmd   `cmd:"" help:"Train one rank of a task from config files and overrides (classy_train)."`
	Launch  launchCmd  `cmd:"" help:"Spawn and supervise this node's ranks: cohort launch --nproc-per-node N -- train -c cfg.yaml."`
	Config  configCmd  `cmd:"" help:"Print the fully resolved config as YAML."`
	Bench   benchCmd   `cmd:"" help:"Benchmarks: all-reduce bandwidth (training throughput: scripts/bench)."`
	Plot    plotCmd    `cmd:"" help:"Redraw a run's loss/accuracy/throughput PNGs from its metrics.jsonl."`
	Doctor  doctorCmd  `cmd:"" help:"Check environment, rendezvous server and token, data plane, GPUs and datasets."`
	Version versionCmd `cmd:"" help:"Print version, Go version, build tags and BLAS."`

	RdzvConfig rdzvConfigCmd `cmd:"" help:"Print a nats-server authorization block giving a job a NATS user confined to its own subjects."`
}

// streams are where commands write; tests replace them.
type streams struct {
	Out, Err io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], streams{Out: os.Stdout, Err: os.Stderr}))
}

// run parses args, runs the command and maps its error to an exit code.
func run(args []string, io streams) int {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("cohort"),
		kong.Description("Data-parallel neural network training across processes and GPUs."),
		kong.Writers(io.Out, io.Err),
		kong.Bind(io),
	)
	if err != nil {
		fmt.Fprintln(io.Err, "cohort: internal CLI error:", err)
		return ExitFailure
	}
	ctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(io.Err, "cohort: %v\n(see cohort --help)\n", err)
		return ExitUsage
	}
	if err := ctx.Run(); err != nil {
		var code exitError
		if !errors.As(err, &code) { // a launcher's code was explained already
			fmt.Fprintln(io.Err, "cohort:", err)
		}
		return exitCode(err)
	}
	return ExitOK
}
