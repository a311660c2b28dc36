package rendezvous

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"cohort/dist/natsserver"

	"github.com/nats-io/nats.go"
)

// A 1.5 s window keeps the tests quick yet above the scheduling stalls of
// a loaded machine (shorter ones blamed healthy peers on a shared 2-core
// host); slack bounds the waits for what must happen.
const (
	testInterval = 100 * time.Millisecond
	testMissed   = 15
	slack        = 5 * time.Second
)

// watchAll starts liveness on every member with its own log.
func watchAll(ms []*Member) []lossLog {
	logs := make([]lossLog, len(ms))
	for i, m := range ms {
		logs[i] = newLossLog()
		m.StartLiveness(testInterval, testMissed, logs[i].onLost)
	}
	return logs
}

func TestLostPeer(t *testing.T) {
	t.Parallel() // mostly waiting
	url := startServer(t)
	ms := mustJoinAll(t, fixed(url, "lost", 3))
	logs := watchAll(ms)
	ms[2].nc.Close() // dies without a word, like a killed process
	for i := range 2 {
		err := logs[i].wait(t, fmt.Sprint("rank ", i), testInterval*testMissed+slack)
		var lost *LostError
		if !errors.As(err, &lost) || lost.Rank != 2 || lost.Host != "node2" || !strings.HasPrefix(lost.Reason, "no heartbeat for ") {
			t.Fatalf("rank %d: %v, want rank 2 on node2 lost", i, err)
		}
		t.Logf("rank %d: %v", i, err)
	}
}

func TestAbortReachesEveryone(t *testing.T) {
	t.Parallel() // mostly waiting
	url := startServer(t)
	ms := mustJoinAll(t, fixed(url, "abort", 3))
	logs := watchAll(ms)
	if err := ms[1].Abort("loss is NaN at step 1200"); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		err := logs[i].wait(t, fmt.Sprint("rank ", i), slack)
		var ab *AbortError
		if !errors.As(err, &ab) || ab.Rank != 1 || ab.Host != "node1" || ab.Reason != "loss is NaN at step 1200" {
			t.Fatalf("rank %d: %v, want an abort from rank 1 with its reason", i, err)
		}
	}
	// The aborting member is not told about its own abort, nor about the
	// silence of peers that stop because of it.
	ms[0].Leave()
	ms[2].nc.Close()
	quiet(t, logs[1])
}

func TestAbortRunFromLauncher(t *testing.T) {
	t.Parallel() // mostly waiting
	url := startServer(t)
	ms := mustJoinAll(t, fixed(url, "gang", 2))
	logs := watchAll(ms)
	nc, err := nats.Connect(url, nats.Token(testToken))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := AbortRun(nc, "gang", "launcher-host", "worker 1 exited with status 137"); err != nil {
		t.Fatal(err)
	}
	for i, l := range logs {
		var ab *AbortError
		if err := l.wait(t, fmt.Sprint("rank ", i), slack); !errors.As(err, &ab) || ab.Rank != -1 ||
			ab.Host != "launcher-host" || ab.Reason != "worker 1 exited with status 137" {
			t.Fatalf("rank %d: %v, want the launcher's abort", i, err)
		}
	}
	if err := AbortRun(nc, "a.b", "h", "r"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AbortRun with a bad run ID: %v", err)
	}
}

func TestLeaveIsNotALoss(t *testing.T) {
	t.Parallel() // mostly waiting
	url := startServer(t)
	ms := mustJoinAll(t, fixed(url, "leave", 3))
	logs := watchAll(ms)
	ms[2].Leave()
	quiet(t, logs[0], logs[1])
}

// quiet fails if any log receives anything within a liveness window and
// some margin: a wrongly counted loss would be reported by then.
func quiet(t *testing.T, logs ...lossLog) {
	t.Helper()
	end := time.After((testMissed + 5) * testInterval)
	for {
		for i, l := range logs {
			select {
			case err := <-l:
				t.Fatalf("log %d: unexpected report %v", i, err)
			default:
			}
		}
		select {
		case <-end:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestServerGone(t *testing.T) {
	t.Parallel() // mostly waiting
	s, err := natsserver.Start(natsserver.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	ms := mustJoinAll(t, fixed(s.URL(), "gone", 2))
	logs := watchAll(ms)
	s.Shutdown()
	for i, l := range logs {
		if err := l.wait(t, fmt.Sprint("rank ", i), slack); !errors.Is(err, ErrDisconnected) || !strings.Contains(err.Error(), s.URL()) {
			t.Fatalf("rank %d: %v, want ErrDisconnected naming the URL", i, err)
		}
	}
}

// TestOutageWithinWindow restarts the server on its port quicker than the
// liveness window: clients reconnect and nobody is reported.
func TestOutageWithinWindow(t *testing.T) {
	t.Parallel() // mostly waiting
	port := freePort(t)
	s, err := natsserver.Start(natsserver.Options{Port: port, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	ms := mustJoinAll(t, fixed(s.URL(), "blip", 2))
	logs := watchAll(ms)
	s.Shutdown()
	s, err = natsserver.Start(natsserver.Options{Port: port, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	quiet(t, logs...)
	for i, m := range ms {
		if !m.nc.IsConnected() || m.nc.Stats().Reconnects == 0 {
			t.Fatalf("member %d: connected %v after %d reconnects, want a reconnect", i, m.nc.IsConnected(), m.nc.Stats().Reconnects)
		}
	}
}

// TestRunsDoNotMixLiveness: an abort and a death in one run are not news to
// another run on the same server.
func TestRunsDoNotMixLiveness(t *testing.T) {
	t.Parallel() // mostly waiting
	url := startServer(t)
	a := mustJoinAll(t, fixed(url, "calm", 2))
	b := mustJoinAll(t, fixed(url, "stormy", 2))
	logsA, logsB := watchAll(a), watchAll(b)
	if err := b[0].Abort("diverged"); err != nil {
		t.Fatal(err)
	}
	logsB[1].wait(t, "stormy rank 1", slack)
	quiet(t, logsA...)
}
