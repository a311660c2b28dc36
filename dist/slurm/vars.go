package slurm

import (
	"fmt"
	"strconv"
	"strings"
)

// first returns the first of names that is set, and its value; "", "" when
// none is.
func first(getenv func(string) string, names ...string) (name, value string) {
	for _, n := range names {
		if v := getenv(n); v != "" {
			return n, v
		}
	}
	return "", ""
}

// lookup is first, failing when none of names is set.
func lookup(getenv func(string) string, names ...string) (name, value string, err error) {
	name, value = first(getenv, names...)
	if name == "" {
		return "", "", fmt.Errorf("%w: %s is not set (is this an srun task?)", ErrEnv, strings.Join(names, " or "))
	}
	return name, value, nil
}

func stringVar(getenv func(string) string, names ...string) (string, error) {
	_, v, err := lookup(getenv, names...)
	return v, err
}

// intVar reads the first of names that is set as a non-negative integer.
func intVar(getenv func(string) string, names ...string) (int, error) {
	name, v, err := lookup(getenv, names...)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s=%q is not a non-negative integer", ErrEnv, name, v)
	}
	return n, nil
}
