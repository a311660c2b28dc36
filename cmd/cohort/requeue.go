package main

import (
	"fmt"
	"os/exec"

	"cohort/dist"
)

// requeue asks SLURM to put this job back in the queue after a preemption
// checkpoint (--requeue); the requeued job continues with --resume auto.
// A failure is reported, not fatal: the checkpoint is safe either way.
func requeue(io streams, env dist.Env) {
	if env.JobID == "" {
		fmt.Fprintln(io.Err, "cohort: --requeue: not a SLURM job (no SLURM_JOB_ID); resubmit it yourself")
		return
	}
	out, err := exec.Command("scontrol", "requeue", env.JobID).CombinedOutput()
	if err != nil {
		fmt.Fprintf(io.Err, "cohort: --requeue: scontrol requeue %s: %v: %s; resubmit the job (it resumes from the checkpoint)\n", env.JobID, err, out)
		return
	}
	fmt.Fprintf(io.Err, "cohort: requeued SLURM job %s\n", env.JobID)
}
