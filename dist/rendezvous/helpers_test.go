package rendezvous

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"cohort/dist/natsserver"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testToken = "t0ken"

// startServer runs an embedded server for one test.
func startServer(t *testing.T) string {
	t.Helper()
	s, err := natsserver.Start(natsserver.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s.URL()
}

// worker is the Options of worker i in a test run.
func worker(url, run string, world, rank, i int) Options {
	return Options{
		URL: url, Auth: Auth{Token: testToken}, RunID: run, WorldSize: world, Rank: rank,
		Host: fmt.Sprintf("node%d", i), DataAddr: fmt.Sprintf("10.0.0.%d:7000", i), Timeout: 20 * time.Second,
	}
}

// fixed is n workers with ranks 0..n-1.
func fixed(url, run string, n int) []Options {
	out := make([]Options, n)
	for i := range out {
		out[i] = worker(url, run, n, i, i)
	}
	return out
}

// joinAll joins every worker concurrently; members that joined leave at the
// end of the test.
func joinAll(t *testing.T, opts []Options) ([]*Member, []error) {
	t.Helper()
	ms, errs := make([]*Member, len(opts)), make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Go(func() { ms[i], errs[i] = Join(context.Background(), o) })
	}
	wg.Wait()
	for _, m := range ms {
		if m != nil {
			t.Cleanup(m.Leave)
		}
	}
	return ms, errs
}

// mustJoinAll is joinAll for runs that must succeed.
func mustJoinAll(t *testing.T, opts []Options) []*Member {
	t.Helper()
	ms, errs := joinAll(t, opts)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	return ms
}

// lossLog collects what a member's liveness reports.
type lossLog chan error

func newLossLog() lossLog        { return make(lossLog, 1) }
func (l lossLog) onLost(e error) { l <- e }

// wait returns the report, failing the test if none comes within limit.
func (l lossLog) wait(t *testing.T, who string, limit time.Duration) error {
	t.Helper()
	select {
	case err := <-l:
		return err
	case <-time.After(limit):
		t.Fatalf("%s: no liveness report within %s", who, limit)
		return nil
	}
}
