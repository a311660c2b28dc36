package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"cohort/dist"
	"cohort/dist/bench"
)

// benchCmd groups the benchmarks.
type benchCmd struct {
	Allreduce benchAllreduceCmd `cmd:"" help:"All-reduce bandwidth over the process group (run under cohort launch)."`
}

type benchAllreduceCmd struct {
	Sizes  string `default:"4K,64K,1M,16M,64M" help:"Message sizes in bytes (K, M, G are binary)."`
	Iters  int    `default:"0" help:"Timed iterations per size (0: clamp(2^30/bytes, 20, 1000), as the anchors)."`
	Warmup int    `default:"-1" help:"Untimed iterations first (-1: max(5, iters/10))."`
	JSON   string `name:"json" placeholder:"FILE" help:"Also write the rows as JSON lines (the anchors' keys) to FILE, from rank 0."`
	Env    string `name:"env" enum:",launcher,none" default:"" help:"Where this rank's place comes from (empty detects)."`
}

// Run joins the group, measures, and has rank 0 print the table.
func (c *benchAllreduceCmd) Run(io streams) error {
	sizes, err := bench.ParseSizes(c.Sizes)
	if err != nil {
		return fmt.Errorf("%w: --sizes: %w", errUsage, err)
	}
	env, err := dist.FromEnv(os.Getenv, c.Env)
	if err != nil {
		return err
	}
	if env.WorldSize < 2 {
		return fmt.Errorf("%w: an all-reduce benchmark needs ranks: cohort launch --nproc-per-node 2 -- bench allreduce", errUsage)
	}
	g, err := dist.Join(context.Background(), env)
	if err != nil {
		return err
	}
	defer g.Close()
	rows, err := bench.AllReduce(g, sizes, c.Iters, c.Warmup)
	if err != nil {
		g.Abort(err.Error())
		return err
	}
	if g.Rank() != 0 {
		return nil
	}
	fmt.Fprintf(io.Out, "all-reduce float32 sum, %d ranks, TCP ring\n%s", g.Size(), bench.Table(rows))
	if c.JSON == "" {
		return nil
	}
	f, err := os.Create(c.JSON)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
