package rendezvous

import (
	"fmt"
	"strconv"
)

// Every subject a run uses lives under cohort.<run>.:
//
//	cohort.<run>.join                      join round (publish, subscribe)
//	cohort.<run>.join.in.<worker>          a worker's join inbox
//	cohort.<run>.x.<key>.<seq>             Exchange round
//	cohort.<run>.x.<key>.<seq>.in.<worker> a worker's exchange inbox
//	cohort.<run>.hb                        heartbeats
//	cohort.<run>.abort                     aborts
//	cohort.<run>._INBOX.<id>               nats.go's request inboxes
//
// nats.go would put request inboxes under _INBOX., which every client of
// the server may need; under the run's prefix instead, one pattern per run
// is the whole of a job's permissions, and nobody else's replies are in it.

// prefix is the root of run's subjects.
func prefix(run string) string { return "cohort." + run }

// subject names a subject of run.
func subject(run, name string) string { return prefix(run) + "." + name }

// inboxPrefix is where nats.go makes run's request inboxes.
func inboxPrefix(run string) string { return subject(run, "_INBOX") }

// pattern matches every subject of run.
func pattern(run string) string { return prefix(run) + ".>" }

// AttemptID is the run ID of a job's attempt: runID for the first, then
// runID-r1, runID-r2, … for restarts, so that a restarted gang never hears
// stale messages of the one before.
func AttemptID(runID string, attempt int) string {
	if attempt == 0 {
		return runID
	}
	return runID + "-r" + strconv.Itoa(attempt)
}

// Permissions lists the subject patterns a job's NATS user must be allowed
// to publish and subscribe to, and all it needs: cohort.<id>.> for the ID of
// each attempt, the first and up to restarts more (AttemptID). Each pattern
// holds its attempt's subjects and request inboxes, and no other run's.
func Permissions(runID string, restarts int) ([]string, error) {
	if restarts < 0 {
		return nil, fmt.Errorf("%w: %d restarts, want ≥ 0", ErrInvalid, restarts)
	}
	out := make([]string, 0, restarts+1)
	for a := range restarts + 1 {
		id := AttemptID(runID, a)
		if !namePattern.MatchString(id) {
			return nil, fmt.Errorf("%w: run ID %q must match %s", ErrInvalid, id, namePattern)
		}
		out = append(out, pattern(id))
	}
	return out, nil
}
