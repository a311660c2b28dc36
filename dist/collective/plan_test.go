package collective

import (
	"errors"
	"testing"
	"time"
)

// TestAllReducePlan runs every rank's plan in lock step over contribution
// sets: each element of a reduce must be new to the receiver, every send
// must forward the previous step's receive, and in the end every rank must
// hold every rank's contribution to every segment.
func TestAllReducePlan(t *testing.T) {
	for n := 2; n <= 9; n++ {
		plans := make([]plan, n)
		have := make([][]uint64, n) // have[r][segment]: contributions held
		for r := range n {
			plans[r] = newAllReducePlan(frameSum, r, n, 100)
			have[r] = make([]uint64, n)
			for j := range n {
				have[r][j] = 1 << r
			}
		}
		for t0 := range plans[0].steps {
			sent := make([]uint64, n)
			for r, p := range plans {
				j := p.sendSeg(t0)
				if t0 > 0 && j != p.recvSeg(t0-1) {
					t.Fatalf("n=%d rank %d step %d sends segment %d, not the one just received (%d)", n, r, t0, j, p.recvSeg(t0-1))
				}
				sent[r] = have[r][j]
			}
			for r, p := range plans {
				prev, j := mod(r-1, n), p.recvSeg(t0)
				if got := plans[prev].sendSeg(t0); got != j || plans[prev].sendWire(t0) != p.recvWire(t0) {
					t.Fatalf("n=%d step %d: rank %d sends segment %d, rank %d expects %d", n, t0, prev, got, r, j)
				}
				if p.reduces(t0) {
					if have[r][j]&sent[prev] != 0 {
						t.Fatalf("n=%d step %d: rank %d would count a contribution twice", n, t0, r)
					}
					have[r][j] |= sent[prev]
				} else {
					have[r][j] = sent[prev]
				}
			}
		}
		for r := range n {
			for j := range n {
				if have[r][j] != 1<<n-1 {
					t.Fatalf("n=%d: rank %d segment %d holds %b", n, r, j, have[r][j])
				}
			}
		}
	}
}

func TestAllGatherAndBroadcastPlans(t *testing.T) {
	for n := 2; n <= 9; n++ {
		for r := range n {
			p, prev := newAllGatherPlan(r, n, 3), newAllGatherPlan(mod(r-1, n), n, 3)
			for t0 := range p.steps {
				if prev.sendSeg(t0) != p.recvSeg(t0) || (t0 > 0 && p.sendSeg(t0) != p.recvSeg(t0-1)) {
					t.Fatalf("allgather n=%d rank %d step %d: segments disagree", n, r, t0)
				}
			}
			if p.sendSeg(0) != r {
				t.Fatalf("allgather n=%d rank %d starts with segment %d", n, r, p.sendSeg(0))
			}
			for root := range n {
				p, prev := newBroadcastPlan(r, n, root, 5), newBroadcastPlan(mod(r-1, n), n, root, 5)
				sends, recvs := sendSteps(&p), recvSteps(&p)
				if (r == root) != (recvs == nil) || (mod(r+1, n) == root) != (sends == nil) {
					t.Fatalf("broadcast n=%d root %d rank %d: sends at %v, receives at %v", n, root, r, sends, recvs)
				}
				if recvs != nil {
					if ps := sendSteps(&prev); ps == nil || prev.sendWire(ps[0]) != p.recvWire(recvs[0]) {
						t.Fatalf("broadcast n=%d root %d rank %d: predecessor does not send what it expects", n, root, r)
					}
				}
			}
		}
	}
}

func sendSteps(p *plan) []int {
	var s []int
	for t := range p.steps {
		if p.sendSeg(t) >= 0 {
			s = append(s, t)
		}
	}
	return s
}

func recvSteps(p *plan) []int {
	var s []int
	for t := range p.steps {
		if p.recvSeg(t) >= 0 {
			s = append(s, t)
		}
	}
	return s
}

func TestSegmentsCoverBuffer(t *testing.T) {
	for n := 1; n <= 9; n++ {
		for _, total := range []int{0, 1, 3, 7, 8, 1000} {
			p := newAllReducePlan(frameSum, 0, n, total)
			next := 0
			for j := range n {
				off, size := p.segment(j)
				if off != next || size < total/n || size > total/n+1 {
					t.Fatalf("n=%d total=%d: segment %d is [%d,+%d), want start %d", n, total, j, off, size, next)
				}
				next = off + size
			}
			if next != total {
				t.Fatalf("n=%d total=%d: segments end at %d", n, total, next)
			}
		}
	}
}

func TestConfigValidation(t *testing.T) {
	peers := []string{"a:1", "b:2"}
	good := Config{Rank: 1, Size: 2, Peers: peers, Secret: testSecret, JobID: testJob}
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		ok   bool
	}{
		{"good", func(c *Config) {}, true},
		{"single-rank-needs-nothing", func(c *Config) { *c = Config{Size: 1} }, true},
		{"size-zero", func(c *Config) { c.Size = 0 }, false},
		{"size-too-big", func(c *Config) { c.Size = MaxSize + 1 }, false},
		{"rank-out-of-range", func(c *Config) { c.Rank = 2 }, false},
		{"negative-rank", func(c *Config) { c.Rank = -1 }, false},
		{"peers-short", func(c *Config) { c.Peers = peers[:1] }, false},
		{"short-secret", func(c *Config) { c.Secret = []byte("short") }, false},
		{"no-job", func(c *Config) { c.JobID = "" }, false},
		{"long-job", func(c *Config) { c.JobID = string(make([]byte, MaxJobIDBytes+1)) }, false},
		{"chunk-not-multiple-of-4", func(c *Config) { c.ChunkBytes = 6 }, false},
		{"chunk-too-big", func(c *Config) { c.ChunkBytes = MaxChunkBytes + 4 }, false},
		{"negative-stall", func(c *Config) { c.StallTimeout = -time.Second }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			got, err := c.withDefaults()
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("got %v, want ok=%v (or ErrInvalid)", err, tc.ok)
			}
			if tc.ok && (got.StallTimeout != DefaultStallTimeout || got.ChunkBytes != DefaultChunkBytes) {
				t.Fatalf("defaults not applied: %+v", got)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	lns, _ := listeners(t, 1)
	if _, err := New(t.Context(), Config{Rank: 0, Size: 2}, lns[0]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if _, err := lns[0].Accept(); err == nil {
		t.Fatal("New left the listener open")
	}
}
