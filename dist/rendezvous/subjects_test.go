package rendezvous

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestPermissions(t *testing.T) {
	tests := []struct {
		run      string
		restarts int
		want     []string // nil: ErrInvalid
	}{
		{"job-1", 0, []string{"cohort.job-1.>"}},
		{"job-1", 2, []string{"cohort.job-1.>", "cohort.job-1-r1.>", "cohort.job-1-r2.>"}},
		{"slurm-123-0", 1, []string{"cohort.slurm-123-0.>", "cohort.slurm-123-0-r1.>"}},
		{"a.b", 0, nil},
		{">", 0, nil},
		{"", 0, nil},
		{"job", -1, nil},
		{strings.Repeat("j", 64), 0, []string{"cohort." + strings.Repeat("j", 64) + ".>"}},
		{strings.Repeat("j", 64), 1, nil}, // the restart's ID is too long
	}
	for _, tt := range tests {
		got, err := Permissions(tt.run, tt.restarts)
		if tt.want == nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Permissions(%q, %d) = %v, %v, want ErrInvalid", tt.run, tt.restarts, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Permissions(%q, %d) = %v, %v, want %v", tt.run, tt.restarts, got, err, tt.want)
		}
	}
}

// Every subject of a run, and the inboxes nats.go makes for it, fall under
// the run's pattern and under no other run's.
func TestSubjectsUnderThePattern(t *testing.T) {
	run, other := "job", "job-r1"
	subjects := []string{
		subject(run, "join"), subject(run, "join") + ".in.ID", subject(run, "x.nccl.0"),
		subject(run, "x.nccl.0") + ".in.ID", subject(run, "hb"), subject(run, "abort"), inboxPrefix(run) + ".ID",
	}
	for _, s := range subjects {
		if !under(s, pattern(run)) || under(s, pattern(other)) {
			t.Errorf("subject %s: under %s: %v, under %s: %v", s, pattern(run), under(s, pattern(run)), pattern(other), under(s, pattern(other)))
		}
	}
}

// under is NATS matching for a pattern ending in ".>".
func under(subj, pat string) bool {
	return strings.HasPrefix(subj, strings.TrimSuffix(pat, ">")) && len(subj) > len(pat)-1
}

func TestAttemptID(t *testing.T) {
	for attempt, want := range []string{"job", "job-r1", "job-r2"} {
		if got := AttemptID("job", attempt); got != want {
			t.Errorf("AttemptID(job, %d) = %s, want %s", attempt, got, want)
		}
	}
}
