package collective

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testSecret = []byte("0123456789abcdef0123456789abcdef")

const testJob = "job-42"

// listeners binds n loopback listeners and returns them with their
// addresses as a peer table.
func listeners(t testing.TB, n int) ([]net.Listener, []string) {
	t.Helper()
	lns := make([]net.Listener, n)
	addrs := make([]string, n)
	for i := range lns {
		ln, err := Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], addrs[i] = ln, ln.Addr().String()
	}
	return lns, addrs
}

func testConfig(rank int, addrs []string) Config {
	return Config{Rank: rank, Size: len(addrs), Peers: addrs, Secret: testSecret, JobID: testJob}
}

// newGroups forms a ring of n ranks over loopback, each rank's Config
// adjusted by mod, and closes it when the test ends.
func newGroups(t testing.TB, n int, mod func(*Config)) []*Group {
	t.Helper()
	lns, addrs := listeners(t, n)
	gs := make([]*Group, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for r := range n {
		cfg := testConfig(r, addrs)
		if mod != nil {
			mod(&cfg)
		}
		wg.Go(func() { gs[r], errs[r] = New(ctx, cfg, lns[r]) })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			closeAll(gs)
			t.Fatalf("rank %d: New: %v", r, err)
		}
	}
	t.Cleanup(func() { closeAll(gs) })
	return gs
}

// closeAll closes every group at once, as ranks leaving together do.
func closeAll(gs []*Group) {
	var wg sync.WaitGroup
	for _, g := range gs {
		if g != nil {
			wg.Go(func() { g.Close() })
		}
	}
	wg.Wait()
}

// onEach runs fn on every rank concurrently and returns each rank's error.
func onEach(gs []*Group, fn func(r int, g *Group) error) []error {
	errs := make([]error, len(gs))
	var wg sync.WaitGroup
	for r, g := range gs {
		wg.Go(func() { errs[r] = fn(r, g) })
	}
	wg.Wait()
	return errs
}

func noErrors(t testing.TB, errs []error) {
	t.Helper()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
}

// waitInOp blocks until g is inside an operation, so a test can act "mid
// operation" without sleeping for a guessed time.
func waitInOp(t testing.TB, g *Group) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.curOp.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("group never entered an operation")
		}
		time.Sleep(time.Millisecond)
	}
}

// within waits for ch, failing the test instead of hanging forever.
func within[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no result after 20 s", what)
		panic("unreachable")
	}
}

func ranksName(n int) string { return fmt.Sprintf("ranks=%d", n) }
