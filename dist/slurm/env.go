// Package slurm reads a task's place in a SLURM job step from the variables
// srun sets: rank, world, node, and the step's node list and task layout,
// expanded from SLURM's compressed notation ("gpu[01-04,07]", "2(x3),1")
// and checked against each other, so a wrong world is an error rather than
// a hang or a silent mis-sized group.
package slurm

import (
	"errors"
	"fmt"
)

// ErrEnv marks SLURM variables that do not describe a valid task of a step.
var ErrEnv = errors.New("slurm: bad environment")

// Env is a task's place in its SLURM job step.
type Env struct {
	// Rank is SLURM_PROCID, WorldSize the step's task count.
	Rank, WorldSize int
	// LocalRank is SLURM_LOCALID, LocalWorldSize the tasks on this node.
	LocalRank, LocalWorldSize int
	// NodeRank is SLURM_NODEID, NNodes the step's node count.
	NodeRank, NNodes int
	JobID, StepID    string
	// Nodes are the step's node names in node-id order, TasksPerNode the
	// task count of each.
	Nodes        []string
	TasksPerNode []int
	// FirstHost is Nodes[0], the node of node id 0: where a server all
	// tasks reach should run.
	FirstHost string
}

// IsStep reports whether the process is a task of an srun step: both
// SLURM_PROCID and SLURM_STEP_ID (or the older SLURM_STEPID) are set. Job
// ids and task counts alone do not make a step: an salloc shell has
// SLURM_JOB_ID and SLURM_NTASKS, and a batch script even has SLURM_PROCID=0
// and SLURM_LOCALID=0, but neither has a step id (measured with slurm 22.05;
// testdata holds the variables of each).
func IsStep(getenv func(string) string) bool {
	_, step := first(getenv, "SLURM_STEP_ID", "SLURM_STEPID")
	return getenv("SLURM_PROCID") != "" && step != ""
}

// FromEnv reads a step task's place from getenv (normally os.Getenv). The
// step's own variables win over the job's where SLURM sets both
// (SLURM_STEP_NUM_TASKS over SLURM_NTASKS, SLURM_STEP_NUM_NODES over
// SLURM_NNODES, SLURM_STEP_NODELIST over SLURM_JOB_NODELIST,
// SLURM_STEP_TASKS_PER_NODE over SLURM_TASKS_PER_NODE), since a step may use
// part of its allocation. Every mismatch — rank beyond the world, local rank
// beyond this node's tasks, task counts that do not add up, a node list of
// the wrong length, SLURMD_NODENAME not at this node id — is an error
// wrapping ErrEnv that names both values.
func FromEnv(getenv func(string) string) (Env, error) {
	var e Env
	var err error
	ints := []struct {
		dst   *int
		names []string
	}{
		{&e.Rank, []string{"SLURM_PROCID"}},
		{&e.WorldSize, []string{"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"}},
		{&e.LocalRank, []string{"SLURM_LOCALID"}},
		{&e.NodeRank, []string{"SLURM_NODEID"}},
		{&e.NNodes, []string{"SLURM_STEP_NUM_NODES", "SLURM_NNODES"}},
	}
	for _, v := range ints {
		if *v.dst, err = intVar(getenv, v.names...); err != nil {
			return Env{}, err
		}
	}
	if e.JobID, err = stringVar(getenv, "SLURM_JOB_ID", "SLURM_JOBID"); err != nil {
		return Env{}, err
	}
	if e.StepID, err = stringVar(getenv, "SLURM_STEP_ID", "SLURM_STEPID"); err != nil {
		return Env{}, err
	}
	name, list, err := lookup(getenv, "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST")
	if err != nil {
		return Env{}, err
	}
	if e.Nodes, err = ExpandHostlist(list); err != nil {
		return Env{}, fmt.Errorf("%w: %s: %w", ErrEnv, name, err)
	}
	name, tpn, err := lookup(getenv, "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE")
	if err != nil {
		return Env{}, err
	}
	if e.TasksPerNode, err = ExpandTasksPerNode(tpn); err != nil {
		return Env{}, fmt.Errorf("%w: %s: %w", ErrEnv, name, err)
	}
	if err := e.check(getenv("SLURMD_NODENAME")); err != nil {
		return Env{}, err
	}
	e.LocalWorldSize = e.TasksPerNode[e.NodeRank]
	e.FirstHost = e.Nodes[0]
	return e, nil
}

// check cross-checks the variables; nodeName is SLURMD_NODENAME, the name
// slurmd knows this node by ("" when unset).
func (e *Env) check(nodeName string) error {
	switch {
	case e.WorldSize < 1:
		return fmt.Errorf("%w: the step has %d tasks (SLURM_STEP_NUM_TASKS/SLURM_NTASKS)", ErrEnv, e.WorldSize)
	case e.Rank >= e.WorldSize:
		return fmt.Errorf("%w: SLURM_PROCID=%d is not below the step's %d tasks", ErrEnv, e.Rank, e.WorldSize)
	case e.NNodes < 1:
		return fmt.Errorf("%w: the step has %d nodes (SLURM_STEP_NUM_NODES/SLURM_NNODES)", ErrEnv, e.NNodes)
	case e.NodeRank >= e.NNodes:
		return fmt.Errorf("%w: SLURM_NODEID=%d is not below the step's %d nodes", ErrEnv, e.NodeRank, e.NNodes)
	case len(e.Nodes) != e.NNodes:
		return fmt.Errorf("%w: the node list names %d nodes but the step has %d", ErrEnv, len(e.Nodes), e.NNodes)
	case len(e.TasksPerNode) != e.NNodes:
		return fmt.Errorf("%w: tasks per node %v cover %d nodes but the step has %d", ErrEnv, e.TasksPerNode, len(e.TasksPerNode), e.NNodes)
	}
	sum := 0
	for _, n := range e.TasksPerNode {
		sum += n
	}
	if sum != e.WorldSize {
		return fmt.Errorf("%w: tasks per node %v add up to %d but the step has %d tasks", ErrEnv, e.TasksPerNode, sum, e.WorldSize)
	}
	if here := e.TasksPerNode[e.NodeRank]; e.LocalRank >= here {
		return fmt.Errorf("%w: SLURM_LOCALID=%d is not below the %d tasks of node %d", ErrEnv, e.LocalRank, here, e.NodeRank)
	}
	seen := make(map[string]int, len(e.Nodes))
	for i, n := range e.Nodes {
		if j, dup := seen[n]; dup {
			return fmt.Errorf("%w: node %q is both node %d and node %d of the node list", ErrEnv, n, j, i)
		}
		seen[n] = i
	}
	// The node list is taken to be in node-id order; slurmd's own name for
	// this node proves it for this node at least.
	if nodeName != "" && e.Nodes[e.NodeRank] != nodeName {
		return fmt.Errorf("%w: SLURMD_NODENAME=%q but node %d of the node list is %q", ErrEnv, nodeName, e.NodeRank, e.Nodes[e.NodeRank])
	}
	return nil
}
