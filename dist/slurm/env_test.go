package slurm

import (
	"bufio"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readEnvFile parses KEY=VALUE lines, skipping comments.
func readEnvFile(t *testing.T, name string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", name, line)
		}
		m[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// The variables of a real srun task (see testdata/srun-n2.env).
func TestFromEnvRealTask(t *testing.T) {
	env := getenv(readEnvFile(t, "srun-n2.env"))
	if !IsStep(env) {
		t.Fatal("IsStep = false for an srun task")
	}
	got, err := FromEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	want := Env{
		Rank: 1, WorldSize: 2, LocalRank: 1, LocalWorldSize: 2, NodeRank: 0, NNodes: 1,
		JobID: "11", StepID: "0", Nodes: []string{"vm"}, TasksPerNode: []int{2}, FirstHost: "vm",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FromEnv = %+v, want %+v", got, want)
	}
}

// A batch script and an salloc shell are allocations, not tasks of a step.
func TestIsStepNotForAllocations(t *testing.T) {
	for _, name := range []string{"sbatch-n2.env", "salloc-n2.env"} {
		env := getenv(readEnvFile(t, name))
		if IsStep(env) {
			t.Errorf("IsStep(%s) = true", name)
		}
		if _, err := FromEnv(env); !errors.Is(err, ErrEnv) {
			t.Errorf("FromEnv(%s): err = %v, want ErrEnv", name, err)
		}
	}
	if IsStep(getenv(map[string]string{"SLURM_PROCID": "0", "SLURM_STEPID": "3"})) != true {
		t.Error("IsStep ignores the older SLURM_STEPID")
	}
}

// stepOf3 is task 5 of a 6-task step on 3 of a job's 4 nodes: the job's
// variables differ from the step's, which must win.
func stepOf3() map[string]string {
	return map[string]string{
		"SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NODEID": "2",
		"SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "6",
		"SLURM_NNODES": "4", "SLURM_STEP_NUM_NODES": "3",
		"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "1",
		"SLURM_JOB_NODELIST": "gpu[01-04]", "SLURM_STEP_NODELIST": "gpu[01-02,04]",
		"SLURM_TASKS_PER_NODE": "2(x4)", "SLURM_STEP_TASKS_PER_NODE": "2(x3)",
		"SLURMD_NODENAME": "gpu04",
	}
}

func TestFromEnvPrefersStep(t *testing.T) {
	got, err := FromEnv(getenv(stepOf3()))
	if err != nil {
		t.Fatal(err)
	}
	want := Env{
		Rank: 5, WorldSize: 6, LocalRank: 1, LocalWorldSize: 2, NodeRank: 2, NNodes: 3,
		JobID: "4242", StepID: "1", Nodes: []string{"gpu01", "gpu02", "gpu04"},
		TasksPerNode: []int{2, 2, 2}, FirstHost: "gpu01",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FromEnv = %+v, want %+v", got, want)
	}
}

// Without the STEP_ variables (older SLURM) the job's ones are used.
func TestFromEnvJobFallback(t *testing.T) {
	m := map[string]string{
		"SLURM_PROCID": "4", "SLURM_LOCALID": "0", "SLURM_NODEID": "2",
		"SLURM_NTASKS": "7", "SLURM_NNODES": "4", "SLURM_JOBID": "9", "SLURM_STEPID": "0",
		"SLURM_JOB_NODELIST": "rack[1-2]-n[1-2]", "SLURM_TASKS_PER_NODE": "2(x3),1",
	}
	got, err := FromEnv(getenv(m))
	if err != nil {
		t.Fatal(err)
	}
	want := Env{
		Rank: 4, WorldSize: 7, LocalRank: 0, LocalWorldSize: 2, NodeRank: 2, NNodes: 4,
		JobID: "9", StepID: "0", Nodes: []string{"rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"},
		TasksPerNode: []int{2, 2, 2, 1}, FirstHost: "rack1-n1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FromEnv = %+v, want %+v", got, want)
	}
}

func TestFromEnvInconsistent(t *testing.T) {
	tests := []struct {
		name     string
		set      map[string]string // "" deletes
		wantText []string
		wrapped  error
	}{
		{"rank beyond world", map[string]string{"SLURM_PROCID": "6"}, []string{"SLURM_PROCID=6", "6 tasks"}, nil},
		{"local rank beyond node", map[string]string{"SLURM_LOCALID": "2"}, []string{"SLURM_LOCALID=2", "2 tasks of node 2"}, nil},
		{"tasks do not add up", map[string]string{"SLURM_STEP_TASKS_PER_NODE": "2(x2),1"}, []string{"add up to 5", "6 tasks"}, nil},
		{"tasks cover too few nodes", map[string]string{"SLURM_STEP_TASKS_PER_NODE": "3(x2)"}, []string{"cover 2 nodes", "has 3"}, nil},
		{"node list too short", map[string]string{"SLURM_STEP_NODELIST": "gpu[01-02]"}, []string{"names 2 nodes", "has 3"}, nil},
		{"node id beyond nodes", map[string]string{"SLURM_NODEID": "3"}, []string{"SLURM_NODEID=3", "3 nodes"}, nil},
		{"node list out of order", map[string]string{"SLURMD_NODENAME": "gpu02"}, []string{`SLURMD_NODENAME="gpu02"`, `"gpu04"`}, nil},
		{"duplicate node", map[string]string{"SLURM_STEP_NODELIST": "gpu[01-02,01]", "SLURMD_NODENAME": ""}, []string{`"gpu01"`, "node 0 and node 2"}, nil},
		{"no tasks", map[string]string{"SLURM_STEP_NUM_TASKS": "0", "SLURM_PROCID": "0"}, []string{"0 tasks"}, nil},
		{"no nodes", map[string]string{"SLURM_STEP_NUM_NODES": "0", "SLURM_NODEID": "0"}, []string{"0 nodes"}, nil},
		{"rank not a number", map[string]string{"SLURM_PROCID": "x"}, []string{`SLURM_PROCID="x"`}, nil},
		{"negative rank", map[string]string{"SLURM_PROCID": "-1"}, []string{`SLURM_PROCID="-1"`}, nil},
		{"no rank", map[string]string{"SLURM_PROCID": ""}, []string{"SLURM_PROCID is not set"}, nil},
		{"no step", map[string]string{"SLURM_STEP_ID": ""}, []string{"SLURM_STEP_ID or SLURM_STEPID is not set"}, nil},
		{"no node list", map[string]string{"SLURM_STEP_NODELIST": "", "SLURM_JOB_NODELIST": ""}, []string{"SLURM_STEP_NODELIST or SLURM_JOB_NODELIST or SLURM_NODELIST"}, nil},
		{"bad node list", map[string]string{"SLURM_STEP_NODELIST": "gpu[1-"}, []string{"SLURM_STEP_NODELIST", `"gpu[1-"`}, ErrHostlist},
		{"bad tasks per node", map[string]string{"SLURM_STEP_TASKS_PER_NODE": "2(x)"}, []string{"SLURM_STEP_TASKS_PER_NODE", `"2(x)"`}, ErrTasksPerNode},
	}
	for _, tt := range tests {
		m := maps.Clone(stepOf3())
		for k, v := range tt.set {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		got, err := FromEnv(getenv(m))
		if !errors.Is(err, ErrEnv) {
			t.Errorf("%s: FromEnv = %+v, %v; want an error wrapping ErrEnv", tt.name, got, err)
			continue
		}
		if tt.wrapped != nil && !errors.Is(err, tt.wrapped) {
			t.Errorf("%s: error %v does not wrap %v", tt.name, err, tt.wrapped)
		}
		for _, w := range tt.wantText {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tt.name, err, w)
			}
		}
	}
}
