package rendezvous

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cohort/dist/natsserver"

	"github.com/nats-io/nats.go"
)

// checkAgreement verifies that members agree on one membership with ranks
// 0..n-1 and that each sees itself where it should.
func checkAgreement(t *testing.T, ms []*Member, opts []Options) {
	t.Helper()
	want := ms[0].Peers()
	seen := map[int]bool{}
	for i, m := range ms {
		got := m.Peers()
		if len(got) != len(opts) {
			t.Fatalf("member %d sees %d peers, want %d", i, len(got), len(opts))
		}
		for r := range want {
			if got[r] != want[r] {
				t.Fatalf("member %d has peer %d = %+v, member 0 has %+v", i, r, got[r], want[r])
			}
			if got[r].Rank != r {
				t.Fatalf("peer at index %d says rank %d", r, got[r].Rank)
			}
		}
		me := got[m.Rank()]
		if me.Host != opts[i].Host || me.DataAddr != opts[i].DataAddr {
			t.Fatalf("member %d sees itself as %+v, want host %s addr %s", i, me, opts[i].Host, opts[i].DataAddr)
		}
		if opts[i].Rank >= 0 && m.Rank() != opts[i].Rank {
			t.Fatalf("member %d got rank %d, asked for %d", i, m.Rank(), opts[i].Rank)
		}
		if seen[m.Rank()] {
			t.Fatalf("rank %d assigned twice", m.Rank())
		}
		seen[m.Rank()] = true
	}
}

func TestJoin(t *testing.T) {
	url := startServer(t)
	tests := []struct {
		name  string
		ranks []int
	}{
		{"fixed", []int{0, 1, 2, 3}},
		{"fixed out of order", []int{3, 1, 0, 2}},
		{"arrival", []int{-1, -1, -1, -1}},
		{"mixed", []int{-1, 3, -1, 0}},
		{"alone", []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := make([]Options, len(tt.ranks))
			for i, r := range tt.ranks {
				opts[i] = worker(url, strings.ReplaceAll(tt.name, " ", "-"), len(tt.ranks), r, i)
			}
			checkAgreement(t, mustJoinAll(t, opts), opts)
		})
	}
}

func TestArrivalOrder(t *testing.T) {
	url := startServer(t)
	nc, err := nats.Connect(url, nats.Token(testToken))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Start each worker only once the previous one has announced itself,
	// so arrival order is certain even on a loaded machine.
	announced, err := nc.SubscribeSync(subject("arrive", "join"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	ms, errs := make([]*Member, n), make([]error, n)
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ms[i], errs[i] = Join(context.Background(), worker(url, "arrive", n, -1, i)) })
		for len(seen) == i {
			msg, err := announced.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatalf("waiting for worker %d to announce itself: %v", i, err)
			}
			var e envelope[joinRecord]
			if json.Unmarshal(msg.Data, &e) == nil {
				seen[e.From] = true
			}
		}
	}
	wg.Wait()
	for i, m := range ms {
		if errs[i] != nil {
			t.Fatalf("worker %d: %v", i, errs[i])
		}
		defer m.Leave()
		if m.Rank() != i {
			t.Errorf("worker arriving %d-th got rank %d", i, m.Rank())
		}
	}
}

func TestJoin64(t *testing.T) {
	url := startServer(t)
	opts := fixed(url, "big", 64)
	start := time.Now()
	ms := mustJoinAll(t, opts)
	t.Logf("64 workers joined in %s", time.Since(start))
	checkAgreement(t, ms, opts)

	for i := range opts {
		opts[i].RunID, opts[i].Rank = "big-arrival", -1
	}
	start = time.Now()
	ms = mustJoinAll(t, opts)
	t.Logf("64 workers (ranks by arrival) joined in %s", time.Since(start))
	checkAgreement(t, ms, opts)
}

func TestTimeoutNamesMissing(t *testing.T) {
	url := startServer(t)
	tests := []struct {
		name  string
		ranks []int
		want  []string
	}{
		{"fixed", []int{0, 1, 3}, []string{"3/4 joined after", "missing rank 2;", "joined: 0@node0 pid ", "1@node1 pid", "3@node2 pid"}},
		{"arrival", []int{-1, -1, -1}, []string{"3/4 joined after", "1 missing (ranks by arrival)", "joined: node0 pid "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // mostly waiting
			opts := make([]Options, len(tt.ranks))
			for i, r := range tt.ranks {
				opts[i] = worker(url, "timeout-"+tt.name, 4, r, i)
				opts[i].Timeout = 2 * time.Second
			}
			_, errs := joinAll(t, opts)
			for i, err := range errs {
				if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("worker %d: %v, want ErrTimeout", i, err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("worker %d: %q lacks %q", i, err, w)
					}
				}
			}
		})
	}
}

func TestConflicts(t *testing.T) {
	url := startServer(t)
	tests := []struct {
		name      string
		opts      func(url string) []Options
		want      string
		minFailed int
	}{
		// Both fail, though one may have missed the other's record: the
		// one that finds the conflict tells the other.
		{"duplicate rank", func(url string) []Options {
			return []Options{worker(url, "dup", 2, 0, 0), worker(url, "dup", 2, 0, 1)}
		}, "rank 0 claimed twice, by node", 2},
		{"world size", func(url string) []Options {
			return []Options{worker(url, "ws", 2, 0, 0), worker(url, "ws", 3, 1, 1)}
		}, " has world size ", 2},
		// A pair may complete before the third arrives; then only the
		// third fails.
		{"too many by arrival", func(url string) []Options {
			return []Options{worker(url, "many", 2, -1, 0), worker(url, "many", 2, -1, 1), worker(url, "many", 2, -1, 2)}
		}, "more than 2 workers joined", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts(url)
			for i := range opts {
				opts[i].Timeout = 5 * time.Second
			}
			_, errs := joinAll(t, opts)
			failed := 0
			for i, err := range errs {
				if err == nil {
					continue
				}
				failed++
				if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("worker %d: %v, want ErrConflict with %q", i, err, tt.want)
				}
			}
			if failed < tt.minFailed {
				t.Fatalf("%d of %d workers reported the conflict, want at least %d", failed, len(opts), tt.minFailed)
			}
		})
	}
}

// TestLateDuplicate: a second launch reusing a running job's run ID fails at
// once, named, instead of waiting out its timeout.
func TestLateDuplicate(t *testing.T) {
	url := startServer(t)
	mustJoinAll(t, fixed(url, "reuse", 2))
	o := worker(url, "reuse", 2, 1, 7)
	_, err := Join(context.Background(), o)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "rank 1 claimed twice, by node") ||
		!strings.Contains(err.Error(), "node1 pid") || !strings.Contains(err.Error(), "node7 pid") {
		t.Fatalf("late duplicate: %v", err)
	}
}

func TestWrongToken(t *testing.T) {
	url := startServer(t)
	o := worker(url, "auth", 1, 0, 0)
	o.Token = "wrong"
	_, err := Join(context.Background(), o)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "NATS at "+url+" rejected the token: check COHORT_JOB_TOKEN") {
		t.Fatalf("Join with a wrong token: %v", err)
	}
}

// freePort returns a loopback port nothing listens on (for a moment).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestUnreachable(t *testing.T) {
	port := freePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	o := worker(url, "gone", 2, 0, 0)
	o.Timeout = 500 * time.Millisecond
	_, err := Join(context.Background(), o)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), url+" unreachable after") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Join to a closed port: %v", err)
	}
}

func TestCanceled(t *testing.T) {
	url := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err := Join(ctx, worker(url, "cancel", 2, 0, 0))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "1/2 joined") {
		t.Fatalf("canceled Join: %v", err)
	}
}

func TestServerStartsLate(t *testing.T) {
	port := freePort(t)
	opts := fixed("nats://127.0.0.1:"+strconv.Itoa(port), "late", 3)
	time.AfterFunc(time.Second, func() {
		s, err := natsserver.Start(natsserver.Options{Port: port, Token: testToken})
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(s.Shutdown)
	})
	start := time.Now()
	ms := mustJoinAll(t, opts)
	t.Logf("joined %s after the workers started, server up after 1s", time.Since(start))
	checkAgreement(t, ms, opts)
}

// TestRunsDoNotMix runs two rendezvous of different sizes on one server, plus
// a forged record that names another run on the first run's subject.
func TestRunsDoNotMix(t *testing.T) {
	url := startServer(t)
	nc, err := nats.Connect(url, nats.Token(testToken))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	forged, _ := json.Marshal(envelope[joinRecord]{Run: "other", From: "forged", State: complete,
		Body: joinRecord{Rank: 0, World: 5, Host: "intruder", PID: 1}})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc.Publish(subject("first", "join"), forged)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	a, b := fixed(url, "first", 2), fixed(url, "second", 3)
	ms, errs := joinAll(t, append(a, b...))
	close(stop)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	checkAgreement(t, ms[:2], a)
	checkAgreement(t, ms[2:], b)
}
