package slurm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrTasksPerNode marks a SLURM_TASKS_PER_NODE value that is not valid.
var ErrTasksPerNode = errors.New("slurm: bad tasks per node")

// ExpandTasksPerNode expands SLURM's run-length task counts, "2(x3),1" →
// [2 2 2 1], one entry per node in node order. Counts must be ≥ 1 (a step
// has no node without a task) and ≤ MaxHosts, as must the number of nodes;
// anything else is an error wrapping ErrTasksPerNode that quotes the part.
func ExpandTasksPerNode(s string) ([]int, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrTasksPerNode)
	}
	var out []int
	for _, item := range strings.Split(s, ",") {
		countS, repS, repeated := strings.Cut(item, "(x")
		reps := 1
		if repeated {
			inner, ok := strings.CutSuffix(repS, ")")
			if !ok {
				return nil, fmt.Errorf("%w: %q lacks the closing ')' of (xN)", ErrTasksPerNode, item)
			}
			n, err := positive(inner, item)
			if err != nil {
				return nil, err
			}
			reps = n
		}
		count, err := positive(countS, item)
		if err != nil {
			return nil, err
		}
		if len(out)+reps > MaxHosts {
			return nil, fmt.Errorf("%w: more than %d nodes by %q", ErrTasksPerNode, MaxHosts, item)
		}
		for range reps {
			out = append(out, count)
		}
	}
	return out, nil
}

// positive parses a decimal count in [1, MaxHosts].
func positive(s, item string) (int, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q in %q is not a count", ErrTasksPerNode, s, item)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxHosts {
		return 0, fmt.Errorf("%w: count %q in %q is not in [1, %d]", ErrTasksPerNode, s, item, MaxHosts)
	}
	return n, nil
}
